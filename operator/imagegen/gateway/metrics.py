"""The gateway's side of its metrics: the ASGI middleware that counts requests, and the
exposition of the registry. The metrics themselves are defined once, in the catalogue
(imagegen.metrics.gateway)."""

from __future__ import annotations

import time

import prometheus_client
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegen.metrics import gateway as catalogue

TENANT_STATE = "tenant"
"""The request-state key authentication writes the tenant's name under, for the counts."""


def exposition() -> tuple[bytes, str]:
    """The registry in the text format, and its content type."""
    body = prometheus_client.generate_latest(catalogue.REGISTRY)
    return body, prometheus_client.CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware counting requests by the route template that served them and, once
    authentication named the tenant, by tenant too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = catalogue.method(scope["method"])
        status = [500]

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                catalogue.REQUEST_SECONDS.labels(_route(scope), method).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route, code = _route(scope), str(status[0])
            catalogue.REQUESTS.labels(route, method, code).inc()
            tenant = scope.get("state", {}).get(TENANT_STATE)
            if tenant:
                catalogue.TENANT_REQUESTS.labels(tenant, route, code).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
