"""What the worker tells Prometheus about each delivery (imagegen.metrics.worker)."""

from __future__ import annotations

from collections.abc import Sequence

from imagegen.metrics import worker as metrics
from imagegen.queue import keys, model
from imagegen.worker.providers import chain


def started(*, pool: str, region: str, providers: Sequence[str]) -> None:
    """Show a dedicated pool's counters at zero from the start, so the first images
    already make a rate; a shared pool learns its tenants from the items."""
    if not pool.startswith(keys.DEDICATED_PREFIX):
        return
    tenant = pool.removeprefix(keys.DEDICATED_PREFIX)
    for provider in providers:
        metrics.IMAGES_GENERATED.labels(tenant=tenant, region=region, provider=provider)
    for phase in ("succeeded", "failed", "requeued"):
        metrics.DELIVERIES.labels(tenant=tenant, region=region, phase=phase)


def leased(*, lease: model.Lease, region: str) -> None:
    """Count a delivery that is not the item's first, and why the earlier one ended."""
    if not lease.redelivered:
        return
    metrics.REDELIVERIES.labels(tenant=lease.tenant, region=region).inc()
    if lease.previous_error == model.EXPIRED:
        metrics.LEASE_EXPIRIES.labels(tenant=lease.tenant, region=region).inc()


def delivered(*, lease: model.Lease, region: str, phase: str) -> None:
    """What became of a delivery (items.Disposition)."""
    metrics.DELIVERIES.labels(tenant=lease.tenant, region=region, phase=phase).inc()


def generated(*, lease: model.Lease, region: str, outcome: chain.Outcome, seconds: float) -> None:
    """An image made, how long it took, and the providers that failed before."""
    labels = {"tenant": lease.tenant, "region": region, "provider": outcome.provider}
    metrics.IMAGES_GENERATED.labels(**labels).inc()
    metrics.GENERATION_SECONDS.labels(**labels).observe(seconds)
    if outcome.failures:
        metrics.PROVIDER_FALLBACKS.labels(**labels).inc()
    provider_failed(lease=lease, region=region, failures=outcome.failures)


def provider_failed(*, lease: model.Lease, region: str, failures: Sequence[chain.Failure]) -> None:
    """Each provider that failed at the item."""
    for failure in failures:
        metrics.PROVIDER_FAILURES.labels(
            tenant=lease.tenant,
            region=region,
            provider=failure.provider,
            reason="retryable" if failure.retryable else "final",
        ).inc()


def store_failed(*, region: str, reason: str) -> None:
    """A try of the object store that failed (and will be retried)."""
    metrics.STORE_ERRORS.labels(region=region, reason=reason).inc()
