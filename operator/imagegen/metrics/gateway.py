"""The gateway's metrics, on a registry of its own that `imagegen gateway` serves.

Defined here so that every metric of imagegen lives in one catalogue; the gateway
increments them and serves `REGISTRY`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from imagegen.metrics import registries

REGISTRY = registries.for_process()

REQUESTS = Counter(
    "imagegen_gateway_requests_total",
    "HTTP requests answered, by route template (never the raw path) and status code.",
    ["route", "code"],
    registry=REGISTRY,
)
TENANT_REQUESTS = Counter(
    "imagegen_gateway_tenant_requests_total",
    "HTTP requests of an authenticated tenant, by status code.",
    ["tenant", "code"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "imagegen_gateway_request_duration_seconds",
    "Time from request to response, by route template.",
    ["route"],
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
IDEMPOTENT_REPLAYS = Counter(
    "imagegen_gateway_idempotent_replays_total",
    "Requests answered from an earlier one with the same Idempotency-Key.",
    ["tenant"],
    registry=REGISTRY,
)
STREAMS = Gauge(
    "imagegen_gateway_open_streams",
    "Open status streams, by kind (websocket or sse).",
    ["kind"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "imagegen_webhook_deliveries_total",
    "Webhook delivery attempts, by tenant and the receiver's status code (0: no answer).",
    ["tenant", "code"],
    registry=REGISTRY,
)
WEBHOOK_FAILURES = Counter(
    "imagegen_webhook_failures_total",
    "Webhook deliveries given up after their last retry, by tenant and reason.",
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
    "Webhook deliveries waiting in the outbox.",
    registry=REGISTRY,
)
