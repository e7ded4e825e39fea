"""Every Prometheus metric of the gateway, defined once, in a registry of its own.

Labels are routes (templates, never ids), methods, status codes and outcomes: no tenant
names, keys or other unbounded values."""

from __future__ import annotations

import time

import prometheus_client
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = prometheus_client.CollectorRegistry(auto_describe=True)

REQUESTS = prometheus_client.Counter(
    "imagegen_gateway_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "code"],
    registry=REGISTRY,
)
LATENCY = prometheus_client.Histogram(
    "imagegen_gateway_request_duration_seconds",
    "Time to answer an HTTP request (streams: time to the first byte).",
    ["route", "method"],
    registry=REGISTRY,
)
RATE_LIMIT_DECISIONS = prometheus_client.Counter(
    "imagegen_gateway_ratelimit_decisions_total",
    "Rate-limit decisions, by result (admitted or limited).",
    ["result"],
    registry=REGISTRY,
)
BATCHES_CREATED = prometheus_client.Counter(
    "imagegen_gateway_batches_created_total",
    "ImageBatch CRs created through the API.",
    registry=REGISTRY,
)
IMAGES_REQUESTED = prometheus_client.Counter(
    "imagegen_gateway_images_requested_total",
    "Items in the batches created through the API.",
    registry=REGISTRY,
)
IDEMPOTENT_REPLAYS = prometheus_client.Counter(
    "imagegen_gateway_idempotent_replays_total",
    "Requests answered from a stored Idempotency-Key response.",
    registry=REGISTRY,
)
EVENT_STREAMS = prometheus_client.Gauge(
    "imagegen_gateway_event_streams",
    "Open batch event streams, by transport (websocket or sse).",
    ["transport"],
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The registry in the text format, and its content type."""
    return prometheus_client.generate_latest(REGISTRY), prometheus_client.CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware counting requests by the route template that served them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                LATENCY.labels(_route(scope), scope["method"]).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            REQUESTS.labels(_route(scope), scope["method"], str(status[0])).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
