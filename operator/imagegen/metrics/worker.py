"""The worker's metrics, on a registry of its own that the worker serves on its probe port.

A worker serves one pool in one region, so its series are few: tenant, region, provider
and what became of each delivery.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from imagegen.metrics import registries

REGISTRY = registries.for_process()

DELIVERIES = Counter(
    "imagegen_worker_deliveries_total",
    "Leased items taken to their end, by tenant, region and what became of them (phase:"
    " succeeded, reused, failed, requeued, lost, released, dropped).",
    ["tenant", "region", "phase"],
    registry=REGISTRY,
)
IMAGES_GENERATED = Counter(
    "imagegen_worker_images_generated_total",
    "Images a provider generated, by tenant, region and provider.",
    ["tenant", "region", "provider"],
    registry=REGISTRY,
)
PROVIDER_FAILURES = Counter(
    "imagegen_worker_provider_failures_total",
    "Provider attempts that failed, by tenant, region, provider and reason (retryable or final).",
    ["tenant", "region", "provider", "reason"],
    registry=REGISTRY,
)
PROVIDER_FALLBACKS = Counter(
    "imagegen_worker_provider_fallbacks_total",
    "Images made by a later provider after an earlier one failed, by the provider that made it.",
    ["tenant", "region", "provider"],
    registry=REGISTRY,
)
GENERATION_SECONDS = Histogram(
    "imagegen_worker_generation_duration_seconds",
    "Time to generate one image through the provider chain, by the provider that made it.",
    ["tenant", "region", "provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
REDELIVERIES = Counter(
    "imagegen_queue_redeliveries_total",
    "Items leased again after an earlier lease (expired, failed and retried), by tenant"
    " and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
LEASE_EXPIRIES = Counter(
    "imagegen_queue_lease_expiries_total",
    "Items leased again because their previous lease expired unrenewed (a worker died or"
    " stalled), by tenant and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "imagegen_worker_store_errors_total",
    "Failed tries to read or write the region's object store, each retried with backoff"
    " while the item's lease holds, by region and reason (Unreachable, AccessDenied,"
    " NotFound, Refused).",
    ["region", "reason"],
    registry=REGISTRY,
)
