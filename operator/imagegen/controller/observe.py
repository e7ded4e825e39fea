"""What the operator tells Prometheus: handler passes, batches, pools and queues.

The handlers call these small functions at the points where they already know the fact
(a status write, an admission, an HPA read), so metrics cost no extra API call. The queue
sampler is the one task of its own: every few seconds it reads each region's queue depth
(one Lua call per pool), as dispatch does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any, get_args

from imagegen import regions, supervision
from imagegen.api import imagebatch, tenant
from imagegen.controller import batchstatus
from imagegen.metrics import books, labels
from imagegen.metrics import operator as metrics
from imagegen.queue import core, keys

logger = logging.getLogger(__name__)

QUEUE_SAMPLE_SECONDS = 5.0
"""How often the queue depth of every pool in every region is read."""
LANES: tuple[imagebatch.Priority, ...] = get_args(imagebatch.Priority)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TenantFacts:
    """What the metrics need of a Tenant: its tier, its queue pool and its regions."""

    tier: str
    pool: str
    regions: tuple[str, ...]


TENANT_COUNTERS = (metrics.BATCHES_ADMITTED, metrics.SLA_MET, metrics.SLA_MISSED)
"""Per-tenant counters labelled (tenant, tier), shown from the Tenant's first reconcile."""

TENANTS: dict[str, TenantFacts] = {}
"""Tenants by name, as last reconciled; the sampler and the batch book read it."""


def tenant_seen(obj: tenant.Tenant) -> None:
    """Remember a reconciled Tenant's tier, pool and regions."""
    assert obj.metadata.name is not None
    pool = (
        keys.SHARED
        if obj.spec.workers.pool == "shared"
        else keys.dedicated(tenant=obj.metadata.name)
    )
    before = TENANTS.get(obj.metadata.name)
    TENANTS[obj.metadata.name] = TenantFacts(
        tier=obj.spec.tier, pool=pool, regions=tuple(obj.spec.regions)
    )
    if before is None or before.tier != obj.spec.tier:
        if before is not None:
            _forget_counters(name=obj.metadata.name, tier=before.tier)
        # At zero from the start: "no batch missed" is a 0, not a gap, and the first
        # increase shows as one.
        for counter in TENANT_COUNTERS:
            counter.labels(tenant=obj.metadata.name, tier=obj.spec.tier)


def tenant_gone(*, name: str, regions_left: list[str]) -> None:
    """Forget a Tenant (or only its pools in the regions it left)."""
    for region in regions_left:
        metrics.forget_pool(tenant=name, region=region)
    facts = TENANTS.get(name)
    if facts is not None and set(facts.regions) <= set(regions_left):
        TENANTS.pop(name, None)
        _forget_counters(name=name, tier=facts.tier)


def _forget_counters(*, name: str, tier: str) -> None:
    for counter in TENANT_COUNTERS:
        with contextlib.suppress(KeyError):
            counter.remove(name, tier)


@contextlib.contextmanager
def handling(kind: str) -> Iterator[None]:
    """Time one handler pass of `kind`; count it as an error when it raises."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as error:
        metrics.RECONCILE_ERRORS.labels(kind=kind, reason=type(error).__name__).inc()
        raise
    else:
        metrics.LAST_RECONCILE.labels(kind=kind).set(time.time())
    finally:
        metrics.RECONCILE_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)


def region_answered(*, region: str, kind: str, reachable: bool) -> None:
    """The region's Kubernetes API or Redis answered (or not)."""
    metrics.REGION_REACHABLE.labels(region=region, kind=kind).set(1 if reachable else 0)


def pool_seen(*, tenant_name: str, region: str, live: Mapping[str, Mapping[str, Any]]) -> None:
    """Replica gauges from the pool's HPA as the region just reported it."""
    hpa = live.get("HorizontalPodAutoscaler")
    if hpa is None:
        return
    spec, status = hpa.get("spec", {}), hpa.get("status", {})
    values = (
        status.get("currentReplicas", 0),
        status.get("desiredReplicas", 0),
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
    )
    for gauge, value in zip(metrics.POOL_GAUGES, values, strict=True):
        gauge.labels(tenant=tenant_name, region=region).set(value)


def pool_capacity(
    *, tenant_name: str, tier: str, region: str, capacity: tenant.PoolCapacity
) -> None:
    """Pending and unschedulable workers of the Tenant's pool in the region."""
    metrics.forget_capacity(tenant=tenant_name, region=region, keep_tier=tier)
    metrics.POOL_PENDING.labels(tenant=tenant_name, tier=tier, region=region).set(capacity.pending)
    metrics.POOL_UNSCHEDULABLE.labels(tenant=tenant_name, tier=tier, region=region).set(
        capacity.unschedulable
    )


def worker_preempted(*, pool: str, region: str) -> None:
    """The scheduler evicted a worker of the pool for a pod of higher priority."""
    metrics.WORKERS_PREEMPTED.labels(tenant=pool, region=region).inc()


def tier_of(tenant_name: str) -> str:
    """The Tenant's tier as last reconciled, or unknown."""
    facts = TENANTS.get(tenant_name)
    return facts.tier if facts else labels.UNKNOWN_TENANT


def batch_status(*, batch: imagebatch.ImageBatch, status: imagebatch.ImageBatchStatus) -> None:
    """The batch's phase and deadline as just written (or read on resume)."""
    if batch.metadata.uid is None:
        return
    # Admission rejects a batch whose Tenant does not exist; any other batch names a real
    # one, even before this process has reconciled it (a restart).
    real = batch.spec.tenant in TENANTS or status.phase != "Rejected"
    metrics.BATCHES.record(
        uid=batch.metadata.uid,
        entry=books.BatchEntry(
            tenant=batch.spec.tenant if real else labels.UNKNOWN_TENANT,
            tier=tier_of(batch.spec.tenant),
            phase=status.phase or "Pending",
            deadline=status.deadline.timestamp() if status.deadline else None,
            done=(status.phase or "Pending") in batchstatus.TERMINAL,
        ),
    )


def batch_gone(*, uid: str | None) -> None:
    """The batch was deleted."""
    if uid is not None:
        metrics.BATCHES.forget(uid=uid)


def batch_admitted(*, tenant_name: str, tier: str) -> None:
    metrics.BATCHES_ADMITTED.labels(tenant=tenant_name, tier=tier).inc()


def batch_rejected(*, tenant_name: str, reason: str) -> None:
    known = tenant_name if tenant_name in TENANTS else labels.UNKNOWN_TENANT
    metrics.BATCHES_REJECTED.labels(tenant=known, reason=reason).inc()


def batch_dispatched(*, batch: imagebatch.ImageBatch, region: str, now: datetime.datetime) -> None:
    """Time from the batch's creation to its items being queued."""
    created = batch.metadata.creation_timestamp
    if created is not None:
        metrics.DISPATCH_SECONDS.labels(region=region).observe(
            max(0.0, (now - created).total_seconds())
        )


def batch_failed_over(*, tenant_name: str, away_from: str) -> None:
    metrics.FAILOVERS.labels(tenant=tenant_name, region=away_from).inc()


def queue_data_lost(*, tenant_name: str, region: str) -> None:
    """A batch's items were missing from the region's Redis and were enqueued again."""
    metrics.QUEUE_DATA_LOST.labels(tenant=tenant_name, region=region).inc()


def leftovers_cancelled(*, tenant_name: str, region: str, count: int) -> None:
    """Unfinished items of a failed-over batch were cancelled in the region it left."""
    metrics.LEFTOVERS_CANCELLED.labels(tenant=tenant_name, region=region).inc(count)


def batch_finished(*, tenant_name: str, status: imagebatch.ImageBatchStatus) -> None:
    """Count a batch that just ended against its SLA (a cancelled one counts neither way)."""
    if status.sla_met is None or status.phase == "Cancelled":
        return
    counter = metrics.SLA_MET if status.sla_met else metrics.SLA_MISSED
    counter.labels(tenant=tenant_name, tier=tier_of(tenant_name)).inc()


async def sample_queues_forever(*, registry: regions.Registry) -> None:
    """Read every region's queue depth every QUEUE_SAMPLE_SECONDS, until cancelled."""
    while True:
        await asyncio.gather(
            *(sample_region(region=client) for client in registry.clients.values())
        )
        await asyncio.sleep(QUEUE_SAMPLE_SECONDS)


async def sample_region(*, region: regions.RegionClient) -> None:
    """One region's lanes: zero for every lane of every Tenant that runs there, then what
    the region's Redis says is queued."""
    tenants_here = {name: facts for name, facts in TENANTS.items() if region.name in facts.regions}
    lanes: dict[books.LaneKey, books.LaneSample] = {
        (name, lane, region.name): books.LaneSample(queued=0, oldest_age_seconds=0.0)
        for name in tenants_here
        for lane in LANES
    }
    try:
        for pool in sorted({facts.pool for facts in tenants_here.values()}):
            depth = await core.Queue(redis=region.redis, pool=pool).depth()
            for (tenant_name, _tier, lane), sample in depth.items():
                lanes[(tenant_name, lane, region.name)] = books.LaneSample(
                    queued=sample.queued, oldest_age_seconds=sample.oldest_age_seconds
                )
    except regions.UNREACHABLE_ERRORS as error:
        supervision.stop_if_cancelled()  # a cancel a client turned into an error
        logger.debug("queue sample: region %s unreachable: %s", region.name, error)
        region_answered(region=region.name, kind="redis", reachable=False)
        metrics.QUEUES.replace_region(region=region.name, lanes={})
        return
    region_answered(region=region.name, kind="redis", reachable=True)
    metrics.QUEUES.replace_region(region=region.name, lanes=lanes)
