"""A tenant the gateway knows, with workers of its pool storing into the folder the
gateway serves images from: what the UI and the client examples need to see a batch end."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import pathlib
from collections.abc import Iterator

from tests.integration import workerproc
from tests.integration.gatewayworld import GatewayWorld

REGION = "us-east"


@contextlib.contextmanager
def working_tenant(
    gw: GatewayWorld, *, prefix: str, redis_url: str, images: pathlib.Path, logs: pathlib.Path
) -> Iterator[tuple[str, str]]:
    """(name, key) of a new tenant with one worker (4 at a time) in us-east."""
    name, key = gw.ready_tenant(prefix)
    pool = workerproc.Workers(
        redis_url=redis_url, storage=images, logs=logs, tenant=name, region=REGION
    )
    try:
        # In a thread of its own: a Playwright sync session runs an event loop in this one.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(asyncio.run, pool.start("--concurrency", "4")).result()
        yield name, key
    finally:
        pool.stop_all()
