"""SIMULATION: `python -m imagegen.sim` runs the load model against one regional cluster.

The local stack starts one per region: it reads each pool's work from the region's
Redis and writes each pool pod's CPU onto kwok's usage-cpu annotation, so the real HPA
controller has something to scale on. Never part of a production deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import pathlib
import sys
from collections.abc import Sequence

import lightkube
from lightkube.resources import apps_v1

from imagegen import redisconn
from imagegen.api import redisconfig
from imagegen.kube import clients, objects
from imagegen.sim import driver

_DEPLOYMENT_WAIT_SECONDS = 120


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and drive the load until SIGTERM or Ctrl-C."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        targets = [_target(value) for value in args.target]
    except ValueError as error:
        print(f"imagegen.sim: --target: {error}", file=sys.stderr)
        return 2
    try:
        redis = redisconfig.from_arguments(vars(args))
        credentials = redisconn.local_credentials(
            redis, password=os.environ.get(redisconfig.PASSWORD_VARIABLE) or None
        )
    except ValueError as error:
        print(f"imagegen.sim: {error}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args, targets, redis=redis, credentials=credentials))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imagegen.sim",
        description="SIMULATION: set worker pods' simulated CPU from their queue's work",
    )
    parser.add_argument("--kubeconfig", type=pathlib.Path, required=True)
    # The worker's Redis options (api/redisconfig.OPTIONS), each defaulting from its variable.
    for option in redisconfig.OPTIONS:
        parser.add_argument(
            f"--redis-{option}",
            default=os.environ.get(redisconfig.variable(option)),
            required=option == "url" and redisconfig.variable(option) not in os.environ,
            help=f"the region's Redis: {option.replace('-', ' ')} ({redisconfig.variable(option)})",
        )
    parser.add_argument("--namespace", default="imagegen-workers")
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="POOL=DEPLOYMENT",
        help="a queue pool and the Deployment running it, e.g. dedicated-acme=worker-acme",
    )
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--noise", type=float, default=0.0, help="relative spread of CPU")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _target(value: str) -> tuple[str, str]:
    pool, sep, deployment = value.partition("=")
    if not (sep and pool and deployment):
        raise ValueError(f"expected POOL=DEPLOYMENT, got {value!r}")
    return pool, deployment


async def _run(
    args: argparse.Namespace,
    targets: Sequence[tuple[str, str]],
    *,
    redis: redisconfig.RedisConnection,
    credentials: redisconn.Credentials,
) -> None:
    kube = clients.async_client(kubeconfig=args.kubeconfig)
    client = redisconn.connect(redis, credentials=credentials, decode_responses=True)
    try:
        pools = [
            driver.PoolTarget(
                pool=pool,
                namespace=args.namespace,
                selector=await _selector(kube, name=deployment, namespace=args.namespace),
            )
            for pool, deployment in targets
        ]
        await driver.drive_forever(
            kube=kube,
            redis=client,
            targets=pools,
            interval=args.interval,
            noise=args.noise,
            seed=args.seed,
        )
    finally:
        await client.aclose()
        await kube.close()


async def _selector(kube: lightkube.AsyncClient, *, name: str, namespace: str) -> dict[str, str]:
    """The pod labels of a Deployment, waiting for the operator to create it."""
    for _ in range(_DEPLOYMENT_WAIT_SECONDS):
        found = await objects.get_or_none(kube, apps_v1.Deployment, name, namespace=namespace)
        if found is None:
            await asyncio.sleep(1)
            continue
        labels = found.spec.selector.matchLabels if found.spec else None
        if labels:
            return dict(labels)
        raise ValueError(f"Deployment {namespace}/{name} selects pods by no labels")
    raise TimeoutError(f"no Deployment {namespace}/{name} after {_DEPLOYMENT_WAIT_SECONDS}s")


if __name__ == "__main__":
    sys.exit(main())
