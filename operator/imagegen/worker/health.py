"""The worker's probe endpoints, served by aiohttp on the pod's `http` port.

- `/healthz` (liveness): 200 while the consume loop runs, else 503, so the kubelet
  restarts a worker whose loop died; a worker busy finishing items while stopping is alive.
- `/readyz` (readiness): 200 when Redis answers and the worker is not stopping, else 503
  with the reason; the Deployment's rollout waits on it.
- `/metrics`: the worker's Prometheus metrics (imagegen.metrics.worker), when a registry
  is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web
from prometheus_client.registry import CollectorRegistry

from imagegen.metrics import serve
from imagegen.worker.providers import base


class Probes(Protocol):
    """What the endpoints ask the worker."""

    def alive(self) -> bool:
        """True while the consume loop runs."""
        ...

    async def unready_reason(self) -> str | None:
        """None when ready for work, else why not (bounded in time by the worker)."""
        ...


@contextlib.asynccontextmanager
async def serving(
    *, probes: Probes, host: str, port: int, registry: CollectorRegistry | None = None
) -> AsyncIterator[None]:
    """Serve the endpoints on host:port for the duration of the block; port 0 serves
    nothing (a worker run by hand, or in tests that do not probe). A port that cannot be
    bound is a ConfigurationError."""
    if port == 0:
        yield
        return
    endpoints = _Endpoints(probes=probes)
    app = web.Application()
    app.router.add_get("/healthz", endpoints.healthz)
    app.router.add_get("/readyz", endpoints.readyz)
    if registry is not None:
        app.router.add_get("/metrics", serve.handler(registry))
    # Probes arrive every few seconds from every kubelet: an access log line each is noise.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise base.ConfigurationError(f"port {port}: {error.strerror}") from error
        yield
    finally:
        await runner.cleanup()


class _Endpoints:
    def __init__(self, *, probes: Probes) -> None:
        self._probes = probes

    async def healthz(self, _request: web.Request) -> web.Response:
        if self._probes.alive():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="the consume loop has stopped\n")

    async def readyz(self, _request: web.Request) -> web.Response:
        reason = await self._probes.unready_reason()
        if reason is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=f"{reason}\n")
