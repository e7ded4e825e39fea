"""Capacity: how many of each pool's workers a region could place, and why not.

One list-and-watch of the worker pods per region (a reflector), shared by every Tenant:
the Tenant reconcile reads the pool's counts from memory, so watching capacity costs one
watch per region whatever the number of Tenants, and no request per Tenant. The
scheduler's own words (PodScheduled=False, reason Unschedulable, its message such as
`0/5 nodes are available: 5 Insufficient nvidia.com/gpu.`) go into the Tenant's status,
a `Capacity` condition, an Event when they change, and a metric.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from lightkube.resources import core_v1

from imagegen import regions
from imagegen.api import tenant
from imagegen.controller import autoscaling, observe
from imagegen.kube import reflector, watching
from imagegen.render import labels

SHARED = "shared"
"""Pool key of the region's shared pool; a dedicated pool's key is its Tenant's name."""
UNSCHEDULABLE = "Unschedulable"
PREEMPTED = "PreemptionByScheduler"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Pod:
    pool: str
    pending: bool
    unschedulable_message: str | None
    preempted: bool


class RegionPods:
    """The worker pods of one region, reduced to what capacity needs; a reflector sink."""

    def __init__(self, *, region: str) -> None:
        self.region = region
        self.synced = asyncio.Event()
        self._pods: dict[str, _Pod] = {}

    def replace(self, objects: list[Any]) -> None:
        """Everything that exists now (after a list)."""
        # A pod already counted as preempted before the relist is not counted again.
        before, self._pods = self._pods, {}
        for obj in objects:
            key = _key(obj)
            if key is not None and key in before:
                self._pods[key] = before[key]
            self.apply("ADDED", obj)
        self.synced.set()

    def apply(self, event: str, obj: Any) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        key = _key(obj)
        if key is None:
            return
        if event == "DELETED":
            self._pods.pop(key, None)
            return
        pod = _facts(obj)
        if pod is None:
            return
        before = self._pods.get(key)
        if pod.preempted and not (before and before.preempted):
            observe.worker_preempted(pool=pod.pool, region=self.region)
        self._pods[key] = pod

    def capacity(self, pool: str) -> tenant.PoolCapacity | None:
        """The pool's pending and unschedulable workers; None before the first list."""
        if not self.synced.is_set():
            return None
        pods = [pod for pod in self._pods.values() if pod.pool == pool]
        messages = sorted(
            pod.unschedulable_message for pod in pods if pod.unschedulable_message is not None
        )
        return tenant.PoolCapacity(
            pending=sum(pod.pending for pod in pods),
            unschedulable=len(messages),
            # The smallest message: the same set of pods gives the same words every pass,
            # so the status (and the Event) change only when the scheduler's do.
            reason=UNSCHEDULABLE if messages else None,
            message=messages[0] if messages else None,
        )


def pool_key(obj: tenant.Tenant) -> str:
    """Which pool serves the Tenant's workers: its own, or the region's shared one."""
    if obj.spec.workers.pool == "shared":
        return SHARED
    assert obj.metadata.name is not None
    return obj.metadata.name


def watchers(
    *, registry: regions.Registry, namespace: str, options: watching.Options
) -> tuple[dict[str, RegionPods], list[reflector.Reflector]]:
    """A RegionPods and the reflector that feeds it, for every region."""
    pods = {name: RegionPods(region=name) for name in registry.names()}
    feeds = [
        reflector.Reflector(
            client=client.client,
            resource=core_v1.Pod,
            what=f"worker pods of {name}",
            sink=pods[name],
            options=options,
            namespace=namespace,
            labels=labels.managed(),
        )
        for name, client in registry.clients.items()
    ]
    return pods, feeds


Summary = autoscaling.Summary
"""The Capacity condition's status, reason and message (the same shape as Autoscaling's)."""


def summarize(region_statuses: Sequence[tenant.RegionStatus]) -> Summary:
    """The Capacity condition: False when any region's scheduler could not place a worker."""
    seen = [r for r in region_statuses if r.capacity is not None]
    if not seen:
        return Summary(status="Unknown", reason="NotObserved", message="no pods observed yet")
    short = [r for r in seen if r.capacity is not None and r.capacity.unschedulable]
    if short:
        return Summary(
            status="False",
            reason=UNSCHEDULABLE,
            message="; ".join(f"{r.name}: {describe(r.capacity)}" for r in short if r.capacity),
        )
    pending = [r for r in seen if r.capacity is not None and r.capacity.pending]
    if pending:
        return Summary(
            status="True",
            reason="WorkersStarting",
            message=", ".join(
                f"{r.name}: {r.capacity.pending} pending" for r in pending if r.capacity
            ),
        )
    return Summary(status="True", reason="AllWorkersPlaced", message="")


def describe(capacity: tenant.PoolCapacity) -> str:
    """One region's shortfall in words."""
    return (
        f"{capacity.unschedulable} worker(s) unschedulable ({capacity.pending} pending):"
        f" {capacity.message}"
    )


def changed_events(
    *, region: str, before: tenant.PoolCapacity | None, after: tenant.PoolCapacity | None
) -> list[tuple[str, str, str]]:
    """An Event when the region's scheduler starts or stops refusing the pool's workers,
    or says something new; nothing when it says the same again."""
    if after is None:
        return []
    was = (before.reason, before.message) if before is not None else (None, None)
    now = (after.reason, after.message)
    if now == was:
        return []
    if after.reason is not None:
        return [("Warning", "WorkersUnschedulable", f"region {region}: {describe(after)}")]
    if was[0] is not None:
        return [("Normal", "WorkersPlaced", f"region {region}: every worker placed")]
    return []


def _key(obj: Any) -> str | None:
    metadata = getattr(obj, "metadata", None)
    if metadata is None or metadata.name is None:
        return None
    return str(metadata.uid or metadata.name)


def _facts(obj: Any) -> _Pod | None:
    pod_labels = obj.metadata.labels or {}
    pool = pod_labels.get(labels.TENANT) or (
        SHARED if pod_labels.get(labels.POOL) == SHARED else None
    )
    if pool is None:
        return None
    status = obj.status
    phase = status.phase if status is not None else None
    conditions = (status.conditions if status is not None else None) or []
    message = next(
        (
            c.message or UNSCHEDULABLE
            for c in conditions
            if c.type == "PodScheduled" and c.status == "False" and c.reason == UNSCHEDULABLE
        ),
        None,
    )
    preempted = any(c.type == "DisruptionTarget" and c.reason == PREEMPTED for c in conditions)
    # A terminating pod is leaving (its replacement counts instead).
    leaving = obj.metadata.deletionTimestamp is not None
    return _Pod(
        pool=pool,
        pending=phase == "Pending" and not leaving,
        unschedulable_message=None if leaving else message,
        preempted=preempted,
    )


def observe_regions(
    *,
    obj: tenant.Tenant,
    statuses: Sequence[tenant.RegionStatus],
    previous: tenant.TenantStatus,
    pods: dict[str, RegionPods],
) -> list[tuple[str, str, str]]:
    """Fill each reconciled region's `capacity` from the region's pod watch; return the
    Events worth posting (a change only) and update the metrics."""
    assert obj.metadata.name is not None
    before = {r.name: r.capacity for r in previous.regions or ()}
    events: list[tuple[str, str, str]] = []
    for status in statuses:
        region_pods = pods.get(status.name)
        known = None if region_pods is None else region_pods.capacity(pool_key(obj))
        if known is None or status.last_error is not None:
            # Nothing new this pass: keep what was seen last, so that a change across a
            # failed pass still gets its Event when the region answers again.
            status.capacity = before.get(status.name)
            continue
        status.capacity = known
        observe.pool_capacity(
            tenant_name=obj.metadata.name,
            tier=obj.spec.tier,
            region=status.name,
            capacity=status.capacity,
        )
        events.extend(
            changed_events(
                region=status.name, before=before.get(status.name), after=status.capacity
            )
        )
    return events
