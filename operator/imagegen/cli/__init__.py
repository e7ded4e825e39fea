"""The `imagegen` command: the only place where processes are assembled."""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import pydantic
import yaml

from imagegen import devstack, logs
from imagegen.api import chartschema, crd, operatorconfig, tenant
from imagegen.cli import gatewaycmd, workercmd
from imagegen.controller import runtime, settings
from imagegen.localcluster import build, helmchart
from imagegen.metrics import files, serve
from imagegen.render import output, pool

_Loaded = TypeVar("_Loaded")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one subcommand; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure(format=args.log_format, verbose=args.verbose)
    # httpx logs every request at INFO; one line per API call drowns what matters.
    logging.getLogger("httpx2").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    code: int = args.run(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegen", description="Multi-tenant batch image generation on Kubernetes."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="text",
        help="text for people, json (one object a line, with tenant, batch, region and"
        " correlation id) for log pipelines (default: %(default)s)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    operator = commands.add_parser("operator", help="run the Kubernetes operator")
    operator.add_argument(
        "--config",
        type=pathlib.Path,
        required=True,
        help="operator configuration file (regions, worker pods, intervals)",
    )
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
    operator.add_argument(
        "--metrics",
        default="http://0.0.0.0:9090/metrics",
        help="Prometheus /metrics endpoint URL; 'off' disables it (default: %(default)s)",
    )
    operator.set_defaults(run=_run_operator)

    crds = commands.add_parser("crds", help="write the CRDs generated from the API types")
    crds.add_argument("--output-dir", type=pathlib.Path, default=pathlib.Path("crds"))
    crds.set_defaults(run=_run_crds)

    monitoring = commands.add_parser(
        "monitoring", help="write the alert rules and the Grafana dashboard from their source"
    )
    monitoring.add_argument(
        "--output-dir", type=pathlib.Path, default=pathlib.Path("manifests/monitoring")
    )
    monitoring.set_defaults(run=_run_monitoring)

    chart_schema = commands.add_parser(
        "chart-schema",
        help="write the Helm chart's values.schema.json, generated from the API types",
    )
    chart_schema.add_argument(
        "--output", type=pathlib.Path, default=pathlib.Path("charts/imagegen/values.schema.json")
    )
    chart_schema.set_defaults(run=_run_chart_schema)

    manifests = commands.add_parser(
        "manifests", help="render the plain manifests from the Helm chart (builds helm once)"
    )
    manifests.add_argument("--chart", type=pathlib.Path, default=pathlib.Path("charts/imagegen"))
    manifests.add_argument("--output-dir", type=pathlib.Path, default=pathlib.Path("manifests"))
    manifests.set_defaults(run=_run_manifests)

    controlplane = commands.add_parser(
        "controlplane", help="build the local control-plane binaries (cached by go.sum)"
    )
    controlplane.add_argument("--source", type=pathlib.Path, help="tests/controlplane folder")
    controlplane.set_defaults(run=_run_controlplane_build)

    for command, help_text in (
        ("demo", "run the local stack, submit a batch, show its progress, stop"),
        ("dev", "run the local stack (control planes, Redis, operator, workers) until Ctrl-C"),
    ):
        stack_command = commands.add_parser(command, help=help_text)
        stack_command.add_argument(
            "--workdir", type=pathlib.Path, help="where clusters keep their state"
        )
        stack_command.add_argument(
            "--examples", type=pathlib.Path, default=pathlib.Path("examples")
        )
        stack_command.add_argument("--crds", type=pathlib.Path, default=pathlib.Path("crds"))
        stack_command.add_argument(
            "--rbac", type=pathlib.Path, default=pathlib.Path("manifests/rbac")
        )
        stack_command.add_argument(
            "--alert-rules",
            type=pathlib.Path,
            default=pathlib.Path("manifests/monitoring/alerts.rules.yaml"),
            help="rules file the stack's Prometheus loads",
        )
        stack_command.add_argument(
            "--out", type=pathlib.Path, default=pathlib.Path("out"), help="where images go"
        )
        stack_command.set_defaults(run=_run_dev if command == "dev" else _run_demo)
        if command == "demo":
            stack_command.add_argument(
                "--batch", type=pathlib.Path, default=pathlib.Path("examples/imagebatch-100.yaml")
            )

    render = commands.add_parser(
        "render",
        help="print what the operator would apply for a Tenant (like helm template)",
        description="Print, as a YAML stream, the objects the operator would apply in a"
        " region for the Tenant in TENANT.yaml. A Tenant file has no metadata.uid, so the"
        " tenant-uid label is left out; everything else is exactly as the operator applies it.",
    )
    render.add_argument("tenant", type=pathlib.Path, metavar="TENANT.yaml", help="a Tenant file")
    render.add_argument(
        "--region",
        required=True,
        help="a region of the operator config, or 'all' for each of the Tenant's spec.regions",
    )
    render.add_argument(
        "--config", type=pathlib.Path, help="operator configuration file (default: local stack's)"
    )
    render.set_defaults(run=_run_render)

    worker = commands.add_parser(
        "worker",
        help="run a worker: take items from a region's queue, make and store the images",
        description="Lease items from one pool of a region's Redis queue and generate them."
        " Every option defaults from the IMAGEGEN_* variable the worker Deployment sets; the"
        " Redis password is read from IMAGEGEN_REDIS_PASSWORD or --redis-password-file,"
        " never from a flag."
        " SIGTERM or SIGINT stop it: items in flight finish or are handed back.",
    )
    workercmd.add_arguments(worker)
    worker.set_defaults(run=workercmd.run)

    gateway = commands.add_parser(
        "gateway",
        help="serve the batch API (submit, follow, cancel, fetch images)",
        description="The tenant-facing HTTP API: API keys, rate limits, validation,"
        " idempotency, live status over WebSocket and SSE. SIGTERM stops it gracefully.",
    )
    gatewaycmd.add_arguments(gateway)
    gateway.set_defaults(run=gatewaycmd.run)

    openapi = commands.add_parser("openapi", help="write the batch API's OpenAPI document")
    gatewaycmd.add_openapi_arguments(openapi)
    openapi.set_defaults(run=gatewaycmd.run_openapi)
    return parser


def _run_operator(args: argparse.Namespace) -> int:
    try:
        config = _load(args.config, operatorconfig.load)
    except _InputError as error:
        print(error, file=sys.stderr)
        return 2
    liveness = None if args.liveness == "off" else args.liveness
    try:
        metrics = None if args.metrics == "off" else serve.parse(args.metrics)
    except ValueError as error:
        print(f"imagegen operator: {error}", file=sys.stderr)
        return 2
    options = settings.OperatorOptions(
        kubeconfig=args.kubeconfig, liveness_endpoint=liveness, metrics_endpoint=metrics
    )
    runtime.main(options=options, config=config)
    return 0


def _run_crds(args: argparse.Namespace) -> int:
    for path in crd.write(directory=args.output_dir):
        print(path)
    return 0


def _run_monitoring(args: argparse.Namespace) -> int:
    for path in files.write(directory=args.output_dir):
        print(path)
    return 0


def _run_chart_schema(args: argparse.Namespace) -> int:
    args.output.write_text(chartschema.dump(chartschema.values_schema()), encoding="utf-8")
    print(args.output)
    return 0


def _run_manifests(args: argparse.Namespace) -> int:
    try:
        helm = build.ensure_built(only={"helm"})["helm"]
        written = helmchart.write_manifests(helm=helm, chart=args.chart, output_dir=args.output_dir)
    except (build.BuildError, helmchart.HelmError) as error:
        print(f"imagegen manifests: {error}", file=sys.stderr)
        return 1
    for path in written:
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


def _sources(args: argparse.Namespace) -> devstack.Sources:
    return devstack.Sources(
        examples=args.examples, crds=args.crds, rbac=args.rbac, alert_rules=args.alert_rules
    )


def _run_dev(args: argparse.Namespace) -> int:
    return devstack.run_dev(workdir=args.workdir, sources=_sources(args), out=args.out)


def _run_demo(args: argparse.Namespace) -> int:
    return devstack.run_demo(
        workdir=args.workdir, sources=_sources(args), out=args.out, batch=args.batch
    )


class _InputError(Exception):
    """Bad input to a command; the message names the file and field, or the region."""


def _run_render(args: argparse.Namespace) -> int:
    try:
        stream = _render(tenant_file=args.tenant, region=args.region, config_file=args.config)
    except _InputError as error:
        print(error, file=sys.stderr)
        return 2
    print(stream, end="")
    return 0


def _render(*, tenant_file: pathlib.Path, region: str, config_file: pathlib.Path | None) -> str:
    obj = _load(tenant_file, _tenant_from_file)
    config = (
        operatorconfig.local_default()
        if config_file is None
        else _load(config_file, operatorconfig.load)
    )
    if region != "all":
        return _render_region(tenant_file=tenant_file, obj=obj, region=region, config=config)
    return "".join(
        f"# region: {name}\n"
        + _render_region(tenant_file=tenant_file, obj=obj, region=name, config=config)
        for name in obj.spec.regions
    )


def _render_region(
    *,
    tenant_file: pathlib.Path,
    obj: tenant.Tenant,
    region: str,
    config: operatorconfig.OperatorConfig,
) -> str:
    try:
        manifests = pool.tenant_pool(tenant=obj, region=region, config=config)
    except pool.UnknownRegionError as error:
        raise _InputError(f"imagegen render: {error}") from error
    except ValueError as error:
        raise _InputError(f"{tenant_file}: {error}") from error
    # The operator applies nothing in a region the Tenant does not list; printing a pool
    # for it would show something that never happens.
    if region not in obj.spec.regions:
        raise _InputError(
            f"imagegen render: tenant {obj.metadata.name!r} does not run in region {region!r};"
            f" its spec.regions: {', '.join(obj.spec.regions)}"
        )
    if obj.spec.workers.pool == "shared":
        # As the operator does, show the region's shared pool that serves the Tenant; it
        # starts with the workers Namespace, all that tenant_pool renders for a shared Tenant.
        manifests = pool.shared_pool(region=region, config=config)
    return output.to_yaml(manifests)


def _tenant_from_file(path: pathlib.Path) -> tenant.Tenant:
    # From the open file, so that a YAML error's position names the file.
    with path.open() as stream:
        return tenant.Tenant.model_validate(yaml.safe_load(stream))


def _load(path: pathlib.Path, loader: Callable[[pathlib.Path], _Loaded]) -> _Loaded:
    """Run a file loader; a file that cannot be read or is invalid becomes a _InputError
    with one line per problem, each naming the file and the field."""
    try:
        return loader(path)
    except OSError as error:
        raise _InputError(f"{path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise _InputError(f"{path}: {error}") from error
    except pydantic.ValidationError as error:
        lines = []
        for line in error.errors():
            field = ".".join(str(part) for part in line["loc"])
            lines.append(f"{path}: {field}: {line['msg']}" if field else f"{path}: {line['msg']}")
        raise _InputError("\n".join(lines)) from error
