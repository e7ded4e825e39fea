"""`imagegen worker`: its flags, each defaulting from the IMAGEGEN_* variable the worker
Deployment sets, and the process around the consume loop."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import os
import pathlib
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

from imagegen import redisconn
from imagegen.api import objectstore, redisconfig
from imagegen.queue import keys
from imagegen.worker import loop
from imagegen.worker.providers import base, local, openai, registry

_Number = TypeVar("_Number", int, float)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings = loop.WorkerSettings
    region = os.environ.get("IMAGEGEN_REGION")
    parser.add_argument(
        "--region", default=region, required=not region, help="region served (IMAGEGEN_REGION)"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", help="serve this tenant's dedicated pool")
    which.add_argument("--pool", choices=[keys.SHARED], help="serve the region's shared pool")
    flag = functools.partial(_env_flag, parser)
    _redis_flags(flag)
    flag("--concurrency", settings.concurrency, _positive(int), help="items generated at once")
    flag(
        "--storage-dir",
        "out",
        pathlib.Path,
        help="where images are written when no --store-url is given (a file:// store)",
    )
    flag(
        "--store-url",
        "",
        help="the region's object store, file:///path or s3://bucket[/prefix]; S3"
        " credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the pod's role",
    )
    flag("--store-endpoint", "", help="S3 API endpoint URL (default: AWS S3)")
    flag("--store-region", objectstore.ObjectStore().region, help="S3 signing region")
    flag(
        "--store-path-style",
        "false",
        _boolean,
        help="address buckets as endpoint/bucket (MinIO, versitygw, Ceph)",
    )
    flag(
        "--providers",
        ",".join(settings.providers),
        help=f"providers to run, comma-separated, of: {', '.join(registry.NAMES)}",
    )
    flag(
        "--simulated-cost-seconds",
        0.0,
        _positive(float, zero=True),
        help="a benchmark and demo aid: the local provider also spends this long per image,"
        " standing in for a real model",
    )
    flag(
        "--openai-base-url",
        openai.OpenAISettings.base_url,
        help="OpenAI-compatible API root; its key is read from OPENAI_API_KEY",
    )
    flag("--openai-model", openai.OpenAISettings.model, help="model asked of the OpenAI API")
    flag(
        "--lease-seconds",
        settings.lease_seconds,
        _positive(float),
        help="lease length, renewed every third of it",
    )
    flag(
        "--max-attempts",
        settings.max_attempts,
        _positive(int),
        help="leases an item gets before it fails",
    )
    flag(
        "--grace-seconds",
        settings.grace_seconds,
        _positive(float, zero=True),
        help="on SIGTERM, how long items may finish before they are handed back",
    )
    flag(
        "--port",
        settings.port,
        _positive(int, zero=True),
        help="port of /healthz and /readyz, 0 for none",
    )


_REDIS_HELP = {
    "url": "the region's Redis, without credentials: redis://, rediss://, redis+cluster://",
    "ca-file": "CA bundle (PEM) of a rediss:// Redis with a private CA",
    "password-file": f"a file holding the Redis password (or ${redisconfig.PASSWORD_VARIABLE})",
}


def _redis_flags(flag: Callable[..., None]) -> None:
    """The flags of every Redis option (api/redisconfig.OPTIONS), each defaulting from its
    IMAGEGEN_REDIS_* variable; unset ones take the settings model's defaults."""
    defaults = redisconfig.to_options(redisconfig.RedisConnection(url=loop.DEFAULT_REDIS_URL))
    for option in redisconfig.OPTIONS:
        flag(
            f"--redis-{option}",
            defaults.get(option, ""),
            help=_REDIS_HELP.get(option, f"Redis {option.replace('-', ' ')}"),
        )


def _env_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    default: object,
    kind: Callable[[str], object] = str,
    *,
    help: str,
) -> None:
    """A flag whose default is IMAGEGEN_<FLAG>, else `default`; argparse parses either."""
    variable = "IMAGEGEN_" + flag.removeprefix("--").replace("-", "_").upper()
    # An empty variable counts as unset: templates often render an absent value as "".
    value = os.environ.get(variable) or str(default)
    parser.add_argument(flag, type=kind, default=value, help=f"{help} ({variable}; %(default)s)")


def _positive(kind: Callable[[str], _Number], *, zero: bool = False) -> Callable[[str], _Number]:
    """An argparse type: a number above 0 (or at least 0)."""

    def parse(text: str) -> _Number:
        value = kind(text)
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if zero else '> 0'}: {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _worker_settings(args: argparse.Namespace) -> loop.WorkerSettings:
    """Settings from the parsed flags; ValueError (or ConfigurationError) names a bad one."""
    providers = tuple(name.strip() for name in args.providers.split(",") if name.strip())
    redis = redisconfig.from_arguments(vars(args))
    return loop.WorkerSettings(
        region=args.region,
        pool=_worker_pool(args),
        redis=redis,
        redis_credentials=redisconn.local_credentials(
            redis, password=os.environ.get(redisconfig.PASSWORD_VARIABLE) or None
        ),
        concurrency=args.concurrency,
        lease_seconds=args.lease_seconds,
        max_attempts=args.max_attempts,
        store=_store(args),
        providers=providers,
        provider_settings=registry.ProviderSettings(
            local=local.LocalSettings(simulated_cost_seconds=args.simulated_cost_seconds),
            openai=openai.OpenAISettings(base_url=args.openai_base_url, model=args.openai_model),
        ),
        grace_seconds=args.grace_seconds,
        port=args.port,
    )


def _store(args: argparse.Namespace) -> objectstore.ObjectStore:
    """The store of the flags; pydantic's ValidationError (a ValueError) names the field."""
    return objectstore.ObjectStore(
        url=args.store_url or args.storage_dir.resolve().as_uri(),
        endpoint=args.store_endpoint or None,
        region=args.store_region,
        path_style=args.store_path_style,
    )


def _boolean(text: str) -> bool:
    """An argparse type: true/false, yes/no, 1/0."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0", ""):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false: {text}")


def _worker_pool(args: argparse.Namespace) -> str:
    if args.pool:
        return keys.SHARED
    try:
        return keys.dedicated(tenant=args.tenant)
    except ValueError as error:
        raise ValueError(f"--tenant {args.tenant!r}: not a Tenant name") from error


def run(args: argparse.Namespace) -> int:
    try:
        settings = _worker_settings(args)
    except ValueError as error:
        print(f"imagegen worker: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_work(settings=settings))
    except base.ConfigurationError as error:
        # Raised before any item is leased, such as a provider's missing API key.
        print(f"imagegen worker: {error}", file=sys.stderr)
        return 2
    return 0


async def _work(*, settings: loop.WorkerSettings) -> None:
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(signum, stop.set)
    # Renders, simulated costs and file writes share the default executor; sized by the
    # machine (6 threads on 2 cores) it would quietly cap the slots a worker runs at once.
    event_loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=settings.concurrency + 2)
    )
    await loop.run(settings=settings, stop=stop)
