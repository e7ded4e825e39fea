"""The `imagegen` command: the only place where processes are assembled."""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
from collections.abc import Sequence

from imagegen import devstack
from imagegen.api import crd
from imagegen.controller import runtime, settings
from imagegen.localcluster import build


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one subcommand; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO; one line per API call drowns what matters.
    logging.getLogger("httpx2").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    code: int = args.run(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegen", description="Multi-tenant batch image generation on Kubernetes."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    operator = commands.add_parser("operator", help="run the Kubernetes operator")
    operator.add_argument(
        "--kubeconfig",
        type=pathlib.Path,
        help="kubeconfig of the management cluster (default: in-cluster service account)",
    )
    operator.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint URL; 'off' disables it (default: %(default)s)",
    )
    operator.set_defaults(run=_run_operator)

    crds = commands.add_parser("crds", help="write the CRDs generated from the API types")
    crds.add_argument("--output-dir", type=pathlib.Path, default=pathlib.Path("crds"))
    crds.set_defaults(run=_run_crds)

    controlplane = commands.add_parser(
        "controlplane", help="build the local control-plane binaries (cached by go.sum)"
    )
    controlplane.add_argument("--source", type=pathlib.Path, help="tests/controlplane folder")
    controlplane.set_defaults(run=_run_controlplane_build)

    dev = commands.add_parser(
        "dev", help="run the local stack: real control planes, CRDs, examples, operator"
    )
    dev.add_argument("--workdir", type=pathlib.Path, help="where clusters keep their state")
    dev.add_argument("--examples", type=pathlib.Path, default=pathlib.Path("examples"))
    dev.add_argument("--crds", type=pathlib.Path, default=pathlib.Path("crds"))
    dev.set_defaults(run=_run_dev)
    return parser


def _run_operator(args: argparse.Namespace) -> int:
    liveness = None if args.liveness == "off" else args.liveness
    config = settings.OperatorConfig(kubeconfig=args.kubeconfig, liveness_endpoint=liveness)
    runtime.main(config=config)
    return 0


def _run_crds(args: argparse.Namespace) -> int:
    for path in crd.write(directory=args.output_dir):
        print(path)
    return 0


def _run_controlplane_build(args: argparse.Namespace) -> int:
    try:
        binaries = build.ensure_built(source_dir=args.source)
    except build.BuildError as error:
        print(f"imagegen controlplane: {error}", file=sys.stderr)
        return 1
    for name, path in sorted(binaries.items()):
        print(f"{name}\t{path}")
    return 0


def _run_dev(args: argparse.Namespace) -> int:
    return devstack.run(workdir=args.workdir, examples=args.examples, crds=args.crds)
