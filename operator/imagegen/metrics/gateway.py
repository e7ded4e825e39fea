"""The gateway's metrics, on a registry of its own that `imagegen gateway` serves.

Defined here so that every metric of imagegen lives in one catalogue; the gateway
(imagegen.gateway.metrics: its middleware and /metrics) increments them and serves
`REGISTRY`. Per tenant where the gateway knows the tenant (its API key resolved); routes
are templates, never a path with a batch id; webhook codes are classes (2xx, 4xx...),
never the receiver's URL.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from imagegen.metrics import registries

REGISTRY = registries.for_process()

METHODS: frozenset[str] = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""HTTP methods that become a `method` label; any other token a client sends is `other`."""

REQUESTS = Counter(
    "imagegen_gateway_requests_total",
    "HTTP requests answered (authenticated or not), by route template, method and code.",
    ["route", "method", "code"],
    registry=REGISTRY,
)
TENANT_REQUESTS = Counter(
    "imagegen_gateway_tenant_requests_total",
    "HTTP requests of an authenticated tenant, by route template and status code.",
    ["tenant", "route", "code"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "imagegen_gateway_request_duration_seconds",
    "Time from request to the response's first byte (streams: to their start), by route.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "imagegen_gateway_rate_limited_total",
    "Requests refused by the tenant's GCRA rate limit (429).",
    ["tenant"],
    registry=REGISTRY,
)
RATE_LIMIT_REMAINING = Gauge(
    "imagegen_gateway_rate_limit_remaining",
    "Requests the tenant may still make at once (its burst left), after its last request.",
    ["tenant"],
    registry=REGISTRY,
)
BATCHES_CREATED = Counter(
    "imagegen_gateway_batches_created_total",
    "ImageBatch CRs created through the API.",
    ["tenant"],
    registry=REGISTRY,
)
IMAGES_REQUESTED = Counter(
    "imagegen_gateway_images_requested_total",
    "Items in the batches created through the API.",
    ["tenant"],
    registry=REGISTRY,
)
IDEMPOTENT_REPLAYS = Counter(
    "imagegen_gateway_idempotent_replays_total",
    "Requests answered from an earlier one with the same Idempotency-Key.",
    ["tenant"],
    registry=REGISTRY,
)
STREAMS = Gauge(
    "imagegen_gateway_open_streams",
    "Open batch status streams, by tenant and kind (websocket or sse).",
    ["tenant", "kind"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "imagegen_webhook_deliveries_total",
    "Webhook delivery attempts, by tenant and the class of the receiver's answer "
    "(2xx, 3xx, 4xx, 5xx; none: no answer, e.g. timeout, refused connection).",
    ["tenant", "code"],
    registry=REGISTRY,
)
WEBHOOK_FAILURES = Counter(
    "imagegen_webhook_failures_total",
    "Webhook deliveries given up, by tenant and reason "
    "(exhausted: retries ran out; gone: the endpoint answered 410; refused: unsafe URL).",
    ["tenant", "reason"],
    registry=REGISTRY,
)
WEBHOOK_RETRIES = Counter(
    "imagegen_webhook_retries_total",
    "Webhook deliveries scheduled again after a failed attempt.",
    ["tenant"],
    registry=REGISTRY,
)
WEBHOOK_OUTBOX = Gauge(
    "imagegen_webhook_outbox_depth",
    "Webhook deliveries in the outbox not yet settled for good (new or awaiting a retry), "
    "as the dispatcher last sampled it.",
    registry=REGISTRY,
)


def method(raw: str) -> str:
    """The method as a label: one of METHODS, else `other` (a client may send any token)."""
    return raw if raw in METHODS else "other"


def code_class(status: int | None) -> str:
    """A receiver's status as a bounded label: 2xx ... 5xx, or none without an answer."""
    if status is None or not 100 <= status <= 599:
        return "none"
    return f"{status // 100}xx"
