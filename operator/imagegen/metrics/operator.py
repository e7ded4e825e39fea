"""The operator's metrics, on a registry of its own that `imagegen operator` serves.

The operator knows tenants, regions, batches and pools; the queue's depth and oldest age
per tenant, lane and region are sampled from each region's Redis by the operator too
(`books.QueueBook`), because it is the one process that sees every region.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from imagegen.metrics import books, registries

REGISTRY = registries.for_process()

RECONCILE_SECONDS = Histogram(
    "imagegen_reconcile_duration_seconds",
    "Time one handler pass took, by kind of object (Tenant, ImageBatch).",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "imagegen_reconcile_errors_total",
    "Handler passes that raised, by kind of object and exception class name.",
    ["kind", "reason"],
    registry=REGISTRY,
)
LAST_RECONCILE = Gauge(
    "imagegen_reconcile_last_success_timestamp_seconds",
    "Unix time of the last handler pass that ended without an error, by kind.",
    ["kind"],
    registry=REGISTRY,
)
REGION_REACHABLE = Gauge(
    "imagegen_region_reachable",
    "1 when the region's last call answered, else 0; kind is kubernetes or redis.",
    ["region", "kind"],
    registry=REGISTRY,
)
BATCHES_ADMITTED = Counter(
    "imagegen_batches_admitted_total",
    "ImageBatches admitted, by tenant and tier.",
    ["tenant", "tier"],
    registry=REGISTRY,
)
BATCHES_REJECTED = Counter(
    "imagegen_batches_rejected_total",
    "ImageBatches rejected at admission, by tenant and reason (TenantNotFound and kin).",
    ["tenant", "reason"],
    registry=REGISTRY,
)
DISPATCH_SECONDS = Histogram(
    "imagegen_batch_dispatch_duration_seconds",
    "From the ImageBatch's creation to its items being queued in a region.",
    ["region"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
FAILOVERS = Counter(
    "imagegen_batch_failovers_total",
    "Batches moved away from an unreachable region, by tenant and the region left.",
    ["tenant", "region"],
    registry=REGISTRY,
)
QUEUE_DATA_LOST = Counter(
    "imagegen_batch_queue_data_lost_total",
    "Times a batch's unfinished items were missing from its region's Redis (the Redis lost"
    " its data) and were enqueued again, by tenant and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
LEFTOVERS_CANCELLED = Counter(
    "imagegen_batch_leftover_items_cancelled_total",
    "Unfinished items of failed-over batches cancelled in the region they had left, once"
    " it answered again (so they are not generated twice), by tenant and that region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
SLA_MET = Counter(
    "imagegen_batches_sla_met_total",
    "Batches that completed before their deadline, by tenant and tier.",
    ["tenant", "tier"],
    registry=REGISTRY,
)
SLA_MISSED = Counter(
    "imagegen_batches_sla_missed_total",
    "Batches that completed after their deadline, by tenant and tier.",
    ["tenant", "tier"],
    registry=REGISTRY,
)
POOL_REPLICAS = Gauge(
    "imagegen_pool_replicas",
    "Worker replicas the HPA reports now (status.currentReplicas), per tenant and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
POOL_DESIRED_REPLICAS = Gauge(
    "imagegen_pool_desired_replicas",
    "Worker replicas the HPA wants (status.desiredReplicas), per tenant and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
POOL_MIN_REPLICAS = Gauge(
    "imagegen_pool_min_replicas",
    "The HPA's lower bound (spec.minReplicas), per tenant and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
POOL_MAX_REPLICAS = Gauge(
    "imagegen_pool_max_replicas",
    "The HPA's upper bound (spec.maxReplicas), per tenant and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
POOL_PENDING = Gauge(
    "imagegen_pool_workers_pending",
    "Worker pods of the pool not yet running (Pending), per tenant, tier and region.",
    ["tenant", "tier", "region"],
    registry=REGISTRY,
)
POOL_UNSCHEDULABLE = Gauge(
    "imagegen_pool_workers_unschedulable",
    "Worker pods the region's scheduler could not place (PodScheduled=False,"
    " Unschedulable), per tenant, tier and region.",
    ["tenant", "tier", "region"],
    registry=REGISTRY,
)
POOL_CAPACITY_GAUGES = (POOL_PENDING, POOL_UNSCHEDULABLE)
WORKERS_PREEMPTED = Counter(
    "imagegen_pool_workers_preempted_total",
    "Worker pods the scheduler evicted to make room for pods of a higher priority, per"
    " pool (its tenant, or shared) and region.",
    ["tenant", "region"],
    registry=REGISTRY,
)
POOL_GAUGES = (POOL_REPLICAS, POOL_DESIRED_REPLICAS, POOL_MIN_REPLICAS, POOL_MAX_REPLICAS)

BATCHES = books.BatchBook()
"""Batches by phase and at risk, per tenant: written where the operator writes status."""
QUEUES = books.QueueBook()
"""Queue depth and oldest age per tenant, lane and region: the latest sample."""
REGISTRY.register(BATCHES)
REGISTRY.register(QUEUES)


def forget_pool(*, tenant: str, region: str) -> None:
    """Drop a pool's replica series: its Tenant left the region or was deleted."""
    for gauge in POOL_GAUGES:
        try:
            gauge.remove(tenant, region)
        except KeyError:
            continue
    forget_capacity(tenant=tenant, region=region, keep_tier=None)


def forget_capacity(*, tenant: str, region: str, keep_tier: str | None) -> None:
    """Drop a pool's capacity series of every tier but `keep_tier` (a tier change)."""
    for gauge in POOL_CAPACITY_GAUGES:
        for tier in ("priority", "standard"):
            if tier == keep_tier:
                continue
            try:
                gauge.remove(tenant, tier, region)
            except KeyError:
                continue
