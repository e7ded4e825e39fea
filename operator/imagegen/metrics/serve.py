"""Serving a registry over HTTP with aiohttp, inside the process's own event loop.

The operator serves it on the URL of `--metrics`; the worker adds `/metrics` to its probe
server. Scrapes run on the event loop, so they read what the loop wrote, in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry


@dataclasses.dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where /metrics listens."""

    host: str
    port: int
    path: str


def parse(url: str) -> Endpoint:
    """`http://HOST:PORT/PATH` as an Endpoint; ValueError names what is wrong."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--metrics {url!r}: must be http://HOST:PORT/PATH or 'off'")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"--metrics {url!r}: {error}") from error
    if port is None:
        raise ValueError(f"--metrics {url!r}: needs a port")
    return Endpoint(host=parts.hostname, port=port, path=parts.path or "/metrics")


def handler(
    registry: CollectorRegistry,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler answering with the registry in the text exposition format."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return metrics


@contextlib.asynccontextmanager
async def serving(*, endpoint: Endpoint, registry: CollectorRegistry) -> AsyncIterator[None]:
    """Serve the registry at the endpoint for the duration of the block."""
    app = web.Application()
    app.router.add_get(endpoint.path, handler(registry))
    # Prometheus scrapes every few seconds: an access log line each is noise.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, endpoint.host, endpoint.port).start()
        yield
    finally:
        await runner.cleanup()
