"""ImageBatch handling: admit against the Tenant's quota, dispatch to one region's queue,
follow progress into the status, cancel on request or deletion.

The region is recorded in status before anything is enqueued, so a handler re-run after
a crash enqueues into the same region again, which is a no-op for items already there.
Status is written by this module directly (not through Kopf's patch), so that the count
of active batches that admission reads is never behind what was admitted.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf
import lightkube
from lightkube.types import PatchType

from imagegen import regions, resources, supervision
from imagegen.api import imagebatch, meta, tenant
from imagegen.controller import (
    admission,
    batchlogs,
    batchstatus,
    bodies,
    cleanup,
    conditions,
    dispatch,
    namespaces,
    observe,
    storecondition,
)
from imagegen.queue import core

logger = logging.getLogger(__name__)

KIND = "ImageBatch"
FOLLOW_INTERVAL_SECONDS = 0.25
"""How often a running batch's progress is read from its region's Redis (one Lua call)."""


@dataclasses.dataclass(kw_only=True)
class Context:
    """What the ImageBatch handlers share."""

    registry: regions.Registry
    management: lightkube.AsyncClient
    failover_after_seconds: float = 60.0
    """A batch's region unreachable this long: its unfinished items move to another."""
    operator_namespace: str = "imagegen-system"
    """Where the pending-cleanup ConfigMap lives (`cleanup.PENDING`)."""
    clock: Callable[[], datetime.datetime] = bodies.utc_now
    admission_locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )


def register(*, registry: kopf.OperatorRegistry, context: Context) -> None:
    """Register the ImageBatch handlers on the registry."""
    resource = (meta.GROUP, meta.VERSION, imagebatch.ImageBatch.info.plural)

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    async def admit_batch(body: kopf.Body, **_: Any) -> None:
        with batchlogs.bound(body), observe.handling(KIND):
            await admit_and_dispatch(context=context, body=body)

    @kopf.daemon(*resource, registry=registry, cancellation_timeout=10)
    async def follow_batch(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
        with batchlogs.bound(body):
            await follow(context=context, body=body, stopped=stopped)

    @kopf.on.delete(*resource, registry=registry)
    async def remove_batch(body: kopf.Body, **_: Any) -> None:
        with batchlogs.bound(body), observe.handling(KIND):
            await cancel_in_queue(context=context, body=body)
            await cleanup.on_deleted(
                registry=context.registry,
                management=context.management,
                namespace=context.operator_namespace,
                batch=imagebatch.ImageBatch.model_validate(bodies.plain(body)),
                owner=await _tenant(context=context, name=body.spec["tenant"]),
            )
        observe.batch_gone(uid=body.metadata.uid)


async def admit_and_dispatch(*, context: Context, body: kopf.Body) -> None:
    """Admit a new batch and enqueue it; re-enqueue (a no-op) one already dispatched."""
    batch = imagebatch.ImageBatch.model_validate(bodies.plain(body))
    status = batch.status or imagebatch.ImageBatchStatus()
    observe.batch_status(batch=batch, status=status)
    if status.phase in batchstatus.TERMINAL:
        return
    owner = await _tenant(context=context, name=batch.spec.tenant)
    if status.region is None:
        async with context.admission_locks[batch.spec.tenant]:
            active = await _active_batches(context=context, batch=batch)
            holder = await namespaces.holder(
                client=context.management, name=str(batch.metadata.namespace)
            )
            refusal = admission.check(
                batch=batch, owner=owner, active_batches=active, namespace_holder=holder
            )
            if refusal is not None:
                await _reject(context=context, body=body, batch=batch, refusal=refusal)
                return
            assert owner is not None
            status = await _choose_region(context=context, batch=batch, owner=owner)
    assert owner is not None
    assert status.region is not None
    region = context.registry.get(status.region)
    if region is None:
        raise kopf.TemporaryError(f"region {status.region} is not in the registry", delay=30)
    try:
        added = await dispatch.enqueue(
            region=region,
            batch=batch,
            owner=owner,
            items=_unfinished(batch=batch, status=status),
            correlation_id=batchlogs.correlation_id(body),
        )
    except regions.UNREACHABLE_ERRORS as error:
        supervision.stop_if_cancelled()  # a cancel a client turned into an error
        # An outage, not a bug: retried without a traceback; the daemon fails over if it lasts.
        raise kopf.TemporaryError(
            f"region {status.region} unreachable: {error}", delay=5
        ) from error
    if status.phase == "Pending":
        dispatched = conditions.set_condition(
            status.conditions or [], type="Dispatched", status="True", reason="Enqueued",
            message=f"{len(batch.spec.items)} item(s) queued in {status.region}",
            generation=batch.metadata.generation, now=context.clock(),
        )  # fmt: skip
        await _write(
            context, batch, status.model_copy(update={"phase": "Queued", "conditions": dispatched})
        )
        observe.batch_dispatched(batch=batch, region=status.region, now=context.clock())
        logger.info("batch dispatched: %d item(s) queued in region %s", added, status.region)
        kopf.info(
            body, reason="Dispatched", message=f"{added} item(s) queued in region {status.region}"
        )


async def follow(*, context: Context, body: kopf.Body, stopped: kopf.DaemonStopped) -> None:
    """Carry the batch's progress into its status until it ends; act on spec.cancel.

    It pauses with asyncio.sleep, not `stopped.wait(timeout)`: Kopf runs that wait as a
    task of its own that ends with TimeoutError each time the pause passes, and at exit
    Kopf re-raises the error of every task it finds, so a daemon started while the
    operator was stopping (a resumed batch) made the process exit 1. Kopf cancels the
    daemon when it stops; `stopped` is still checked at each turn."""
    written: imagebatch.ImageBatchStatus | None = None
    written_at = 0.0
    cancel_sent = False
    unreachable_since: float | None = None
    while not stopped:
        batch = imagebatch.ImageBatch.model_validate(bodies.plain(body))
        status = batch.status or imagebatch.ImageBatchStatus()
        if status.phase in batchstatus.TERMINAL:
            return
        region = context.registry.get(status.region) if status.region else None
        if status.phase == "Pending" or region is None:
            await asyncio.sleep(FOLLOW_INTERVAL_SECONDS)
            continue
        owner = await _tenant(context=context, name=batch.spec.tenant)
        if owner is None:
            await asyncio.sleep(FOLLOW_INTERVAL_SECONDS)
            continue
        queue = core.Queue(redis=region.redis, pool=dispatch.pool_of(owner))
        assert batch.metadata.uid is not None
        try:
            if batch.spec.cancel and not cancel_sent:
                await queue.cancel_batch(batch_uid=batch.metadata.uid)
                cancel_sent = True
            progress = await queue.progress(batch_uid=batch.metadata.uid)
            trouble = await storecondition.read(region=region, pool=queue.keyspace.pool)
        except regions.UNREACHABLE_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning(
                "batch %s: region %s unreachable: %s", batch.metadata.name, region.name, error
            )
            unreachable_since = unreachable_since or time.monotonic()
            if time.monotonic() - unreachable_since >= context.failover_after_seconds:
                moved = await _fail_over(
                    context=context, body=body, batch=batch, owner=owner,
                    status=written or status, away_from=region.name,
                )  # fmt: skip
                if moved is not None:
                    written, written_at, unreachable_since = moved, time.monotonic(), None
            await asyncio.sleep(FOLLOW_INTERVAL_SECONDS * 4)
            continue
        unreachable_since = None
        if conditions.find((written or status).conditions, "FailedOver"):
            progress = batchstatus.with_carried_over(progress=progress, previous=written or status)
        wanted = batchstatus.from_progress(
            previous=written or status, progress=progress,
            generation=batch.metadata.generation, now=context.clock(),
        )  # fmt: skip
        wanted = storecondition.apply(
            status=wanted, trouble=trouble, region=region.name,
            generation=batch.metadata.generation, now=context.clock(),
        )  # fmt: skip
        if batchstatus.should_write(
            written=written or status,
            wanted=wanted,
            seconds_since_write=time.monotonic() - written_at,
        ):
            await _write(context, batch, wanted)
            if wanted.phase in batchstatus.TERMINAL:
                observe.batch_finished(tenant_name=batch.spec.tenant, status=wanted)
                logger.info("batch %s: %s", wanted.phase, wanted.progress)
                await cleanup.release_queue(
                    redis=region.redis,
                    region=region.name,
                    pool=queue.keyspace.pool,
                    batch_uid=batch.metadata.uid,
                )
            if wanted.phase != (written or status).phase:
                kopf.info(
                    body,
                    reason=wanted.phase or "Progress",
                    message=f"batch is {wanted.phase}: {wanted.progress}",
                )
            written, written_at = wanted, time.monotonic()
        if wanted.phase in batchstatus.TERMINAL:
            return
        await asyncio.sleep(FOLLOW_INTERVAL_SECONDS)


async def _fail_over(
    *,
    context: Context,
    body: kopf.Body,
    batch: imagebatch.ImageBatch,
    owner: tenant.Tenant,
    status: imagebatch.ImageBatchStatus,
    away_from: str,
) -> imagebatch.ImageBatchStatus | None:
    """Move the unfinished items to another allowed region; None when none answers.

    As at dispatch, the new region is recorded before enqueueing. Items that finished in
    the old region keep their results; items it was still working on are generated again
    in the new one (their result ids are the same, so nothing appears twice in status).
    """
    candidates = [name for name in owner.spec.regions if name != away_from]
    loads = await dispatch.measure(
        registry=context.registry, names=candidates, pool=dispatch.pool_of(owner)
    )
    chosen = dispatch.choose(preference=candidates, loads=loads)
    target = context.registry.get(chosen) if chosen else None
    if chosen is None or target is None:
        return None
    unfinished = _unfinished(batch=batch, status=status)
    message = (
        f"region {away_from} unreachable; {len(unfinished)} unfinished item(s) moved to {chosen}"
    )
    moved = status.model_copy(
        update={
            "region": chosen,
            "conditions": conditions.set_condition(
                status.conditions or [],
                type="FailedOver",
                status="True",
                reason="RegionUnreachable",
                message=message,
                generation=batch.metadata.generation,
                now=context.clock(),
            ),
        }
    )
    await _write(context, batch, moved)
    await dispatch.enqueue(
        region=target,
        batch=batch,
        owner=owner,
        items=unfinished,
        correlation_id=batchlogs.correlation_id(body),
    )
    observe.batch_failed_over(tenant_name=batch.spec.tenant, away_from=away_from)
    kopf.warn(body, reason="FailedOver", message=message)
    return moved


def _unfinished(
    *, batch: imagebatch.ImageBatch, status: imagebatch.ImageBatchStatus
) -> list[imagebatch.Item]:
    """The batch's items that have not succeeded or failed according to the status."""
    finished = {i.id for i in status.items or () if i.state in ("Succeeded", "Failed")}
    return [item for item in batch.spec.items if item.id not in finished]


async def cancel_in_queue(*, context: Context, body: Mapping[str, Any]) -> None:
    """On deletion: queued items go, running ones are dropped when they finish."""
    batch = imagebatch.ImageBatch.model_validate(bodies.plain(body))
    status = batch.status or imagebatch.ImageBatchStatus()
    region = context.registry.get(status.region) if status.region else None
    owner = await _tenant(context=context, name=batch.spec.tenant)
    if region is None or owner is None or batch.metadata.uid is None:
        return
    try:
        await core.Queue(redis=region.redis, pool=dispatch.pool_of(owner)).cancel_batch(
            batch_uid=batch.metadata.uid
        )
    except regions.UNREACHABLE_ERRORS as error:
        supervision.stop_if_cancelled()  # a cancel a client turned into an error
        # Deletion must not hang on a dead region; its workers find the batch gone.
        logger.warning(
            "batch %s: could not cancel in %s: %s", batch.metadata.name, region.name, error
        )


async def _choose_region(
    *, context: Context, batch: imagebatch.ImageBatch, owner: tenant.Tenant
) -> imagebatch.ImageBatchStatus:
    """Admit: pick the region and record it (phase Pending) before enqueueing anything."""
    loads = await dispatch.measure(
        registry=context.registry, names=owner.spec.regions, pool=dispatch.pool_of(owner)
    )
    chosen = dispatch.choose(preference=owner.spec.regions, loads=loads)
    now = context.clock()
    previous = batch.status or imagebatch.ImageBatchStatus()
    if chosen is None:
        waiting = conditions.set_condition(
            previous.conditions or [], type="Dispatched", status="False",
            reason="NoRegionReachable",
            message=f"no region of the tenant answers: {', '.join(owner.spec.regions)}",
            generation=batch.metadata.generation, now=now,
        )  # fmt: skip
        await _write(
            context, batch, previous.model_copy(update={"phase": "Pending", "conditions": waiting})
        )
        raise kopf.TemporaryError("no region reachable", delay=15)
    admitted = conditions.set_condition(
        previous.conditions or [], type="Admitted", status="True", reason="WithinQuota",
        message=f"tenant {owner.metadata.name} admitted the batch",
        generation=batch.metadata.generation, now=now,
    )  # fmt: skip
    status = imagebatch.ImageBatchStatus(
        phase="Pending",
        region=chosen,
        admitted_at=now,
        deadline=now + datetime.timedelta(seconds=owner.spec.sla.batch_deadline_seconds),
        counts=imagebatch.Counts(total=len(batch.spec.items), queued=len(batch.spec.items)),
        progress=f"0/{len(batch.spec.items)}",
        conditions=admitted,
        observed_generation=batch.metadata.generation,
    )
    await _write(context, batch, status)
    observe.batch_admitted(tenant_name=batch.spec.tenant, tier=owner.spec.tier)
    return status


async def _reject(
    *,
    context: Context,
    body: kopf.Body,
    batch: imagebatch.ImageBatch,
    refusal: admission.Refusal,
) -> None:
    previous = batch.status or imagebatch.ImageBatchStatus()
    refused = conditions.set_condition(
        previous.conditions or [], type="Admitted", status="False", reason=refusal.reason,
        message=refusal.message, generation=batch.metadata.generation, now=context.clock(),
    )  # fmt: skip
    status = imagebatch.ImageBatchStatus(
        phase="Rejected",
        message=refusal.message,
        counts=imagebatch.Counts(total=len(batch.spec.items)),
        progress=f"0/{len(batch.spec.items)}",
        conditions=refused,
        observed_generation=batch.metadata.generation,
    )
    await _write(context, batch, status)
    observe.batch_rejected(tenant_name=batch.spec.tenant, reason=refusal.reason)
    kopf.warn(body, reason=refusal.reason, message=refusal.message)


async def _active_batches(*, context: Context, batch: imagebatch.ImageBatch) -> int:
    """Admitted, unfinished batches of the tenant in its namespace, this one excluded."""
    count = 0
    async for other in context.management.list(
        resources.ImageBatch, namespace=batch.metadata.namespace
    ):
        obj = resources.as_dict(other)
        if (
            obj["metadata"].get("uid") == batch.metadata.uid
            or obj["spec"].get("tenant") != batch.spec.tenant
        ):
            continue
        count += (obj.get("status") or {}).get("phase") in batchstatus.ACTIVE
    return count


async def _tenant(*, context: Context, name: str) -> tenant.Tenant | None:
    try:
        found = await context.management.get(resources.Tenant, name)
    except lightkube.ApiError as error:
        if error.status.code == 404:
            return None
        raise
    return tenant.Tenant.model_validate(resources.as_dict(found))


async def _write(
    context: Context, batch: imagebatch.ImageBatch, status: imagebatch.ImageBatchStatus
) -> None:
    assert batch.metadata.name is not None
    await context.management.patch(
        resources.ImageBatch.Status,
        batch.metadata.name,
        {"status": status.model_dump(mode="json", exclude_none=True)},
        namespace=batch.metadata.namespace,
        patch_type=PatchType.MERGE,
    )
    observe.batch_status(batch=batch, status=status)
