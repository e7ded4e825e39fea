"""ImageBatch handling: admit against the Tenant's quota, dispatch to one region's queue,
hand the batch to its region's reporter, cancel and clean up on deletion, and cancel a
deleted Tenant's batches.

The region and the pool are recorded in status before anything is enqueued, so a handler
re-run after a crash enqueues into the same region and pool again, which is a no-op for
items already there. From then on everything uses what was recorded, never the Tenant
(which may change its pool, or be deleted). Status is written by this module directly
(not through Kopf's patch), so that the count of active batches that admission reads is
never behind what was admitted; progress is the reporters' (`controller.reporter`), who
learn of every batch from the watch events this module feeds into `batchindex`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf
import lightkube

from imagegen import regions, resources, supervision
from imagegen.api import imagebatch, meta, tenant
from imagegen.controller import (
    admission,
    batchevents,
    batchindex,
    batchlogs,
    batchstatus,
    batchwrites,
    bodies,
    cleanup,
    conditions,
    dispatch,
    namespaces,
    observe,
    reporting,
)

logger = logging.getLogger(__name__)

KIND = "ImageBatch"


@dataclasses.dataclass(kw_only=True)
class Context:
    """What the ImageBatch handlers share."""

    registry: regions.Registry
    management: lightkube.AsyncClient
    index: batchindex.Index
    """The batches the reporters follow: fed here from the watch and at dispatch."""
    poster: batchevents.Poster
    operator_namespace: str = "imagegen-system"
    """Where the pending-cleanup ConfigMap lives (`cleanup.PENDING`)."""
    clock: Callable[[], datetime.datetime] = bodies.utc_now
    admission_locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )


def register(*, registry: kopf.OperatorRegistry, context: Context) -> None:
    """Register the ImageBatch handlers, and the Tenant deletion that cancels batches."""
    resource = (meta.GROUP, meta.VERSION, imagebatch.ImageBatch.info.plural)

    # An indexing handler rather than `on.event`: Kopf runs indexers on every event ahead
    # of the other handlers (the initial listing too, which it indexes whole before it
    # resumes anything) and logs them only when they fail. It keeps nothing in Kopf's own
    # index (None): the reporters' is `batchindex`, left by a batch in its finalizer.
    @kopf.index(*resource, registry=registry)
    def index_batch(body: kopf.Body, **_: Any) -> None:
        context.index.observe(body=body)

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    async def admit_batch(body: kopf.Body, **_: Any) -> None:
        with batchlogs.bound(body), observe.handling(KIND):
            await admit_and_dispatch(context=context, body=body)

    @kopf.on.delete(*resource, registry=registry)
    async def remove_batch(body: kopf.Body, **_: Any) -> None:
        with batchlogs.bound(body), observe.handling(KIND):
            batch = imagebatch.ImageBatch.model_validate(bodies.plain(body))
            await cancel_in_queue(context=context, batch=batch)
            await cleanup.on_deleted(
                registry=context.registry,
                management=context.management,
                namespace=context.operator_namespace,
                batch=batch,
            )
        context.index.forget(str(body.metadata.uid))
        observe.batch_gone(uid=body.metadata.uid)

    @kopf.on.delete(meta.GROUP, meta.VERSION, tenant.Tenant.info.plural, registry=registry)
    async def cancel_tenant_batches(body: kopf.Body, **_: Any) -> None:
        with observe.handling("Tenant"):
            await cancel_batches_of(
                context=context, owner=tenant.Tenant.model_validate(bodies.plain(body))
            )


async def admit_and_dispatch(*, context: Context, body: kopf.Body) -> None:
    """Admit a new batch and enqueue it (again, after a crash before it was Queued); hand
    a dispatched batch to its region's reporter."""
    batch = imagebatch.ImageBatch.model_validate(bodies.plain(body))
    status = batch.status or imagebatch.ImageBatchStatus()
    observe.batch_status(batch=batch, status=status)
    if status.phase in batchstatus.TERMINAL:
        return
    owner = await batchwrites.tenant_named(management=context.management, name=batch.spec.tenant)
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
    if owner is None:
        await _orphaned(context=context, body=body, batch=batch, status=status)
        return
    if status.pool is None:
        status = await _record_pool(context=context, batch=batch, status=status, owner=owner)
    if status.phase != "Pending":
        context.index.dispatched(batch=batch, status=status, clock=time.monotonic())
        return
    await _enqueue(context=context, body=body, batch=batch, status=status, owner=owner)


async def _enqueue(
    *,
    context: Context,
    body: kopf.Body,
    batch: imagebatch.ImageBatch,
    status: imagebatch.ImageBatchStatus,
    owner: tenant.Tenant,
) -> None:
    """Enqueue a Pending batch in its recorded region and pool; then it is Queued."""
    assert status.region is not None
    assert status.pool is not None
    region = context.registry.get(status.region)
    if region is None:
        raise kopf.TemporaryError(f"region {status.region} is not in the registry", delay=30)
    try:
        added = await dispatch.enqueue(
            region=region,
            batch=batch,
            owner=owner,
            pool=status.pool,
            items=reporting.unfinished(batch=batch, status=status),
            correlation_id=batchlogs.correlation_id(body),
        )
    except regions.UNREACHABLE_ERRORS as error:
        supervision.stop_if_cancelled()  # a cancel a client turned into an error
        # An outage, not a bug: retried without a traceback.
        raise kopf.TemporaryError(
            f"region {status.region} unreachable: {error}", delay=5
        ) from error
    dispatched = conditions.set_condition(
        status.conditions or [], type="Dispatched", status="True", reason="Enqueued",
        message=f"{len(batch.spec.items)} item(s) queued in {status.region}",
        generation=batch.metadata.generation, now=context.clock(),
    )  # fmt: skip
    queued = status.model_copy(update={"phase": "Queued", "conditions": dispatched})
    await batchwrites.write_status(management=context.management, batch=batch, status=queued)
    context.index.dispatched(batch=batch, status=queued, clock=time.monotonic())
    observe.batch_dispatched(batch=batch, region=status.region, now=context.clock())
    logger.info("batch dispatched: %d item(s) queued in region %s", added, status.region)
    kopf.info(
        body, reason="Dispatched", message=f"{added} item(s) queued in region {status.region}"
    )


async def _orphaned(
    *,
    context: Context,
    body: kopf.Body,
    batch: imagebatch.ImageBatch,
    status: imagebatch.ImageBatchStatus,
) -> None:
    """A dispatched batch whose Tenant is gone (seen on a restart): its items are
    cancelled, by its reporter once it is Queued, here while it is still Pending."""
    assert batch.metadata.uid is not None
    if status.phase != "Pending":
        context.index.dispatched(batch=batch, status=status, clock=time.monotonic())
        context.index.orphan(batch.metadata.uid)
        return
    await cleanup.cancel_everywhere(registry=context.registry, batch=batch)
    message = f"tenant {batch.spec.tenant} was deleted before the batch was queued"
    cancelled = status.model_copy(
        update={"phase": "Cancelled", "message": message, "completed_at": context.clock()}
    )
    await batchwrites.write_status(management=context.management, batch=batch, status=cancelled)
    kopf.warn(body, reason="TenantDeleted", message=message)


async def _record_pool(
    *,
    context: Context,
    batch: imagebatch.ImageBatch,
    status: imagebatch.ImageBatchStatus,
    owner: tenant.Tenant,
) -> imagebatch.ImageBatchStatus:
    """Record the pool and region of a batch an older operator dispatched, which recorded
    only its region: from now on it is followed, cancelled and cleaned by the record."""
    assert status.region is not None
    recorded = status.model_copy(
        update={
            "pool": dispatch.pool_of(owner),
            "enqueued_regions": status.enqueued_regions or [status.region],
        }
    )
    await batchwrites.write_status(management=context.management, batch=batch, status=recorded)
    return recorded


async def cancel_in_queue(*, context: Context, batch: imagebatch.ImageBatch) -> None:
    """On deletion: queued items go, running ones are dropped when they finish, in every
    region the batch was enqueued in. A region that does not answer is not waited for:
    its workers find the batch gone once the finalizer's cleanup (or its sweep) has run."""
    if batch.metadata.uid is None:
        return
    await cleanup.cancel_everywhere(registry=context.registry, batch=batch)


async def cancel_batches_of(*, context: Context, owner: tenant.Tenant) -> None:
    """The Tenant is being deleted: cancel the queued and running items of each of its
    unfinished batches, in every region each was enqueued in, and tell each batch why.
    A region that does not answer now is cancelled by the batch's reporter once it does
    (the batch is marked orphaned); deletion never waits on a dead region."""
    name = str(owner.metadata.name)
    async for found in context.management.list(
        resources.ImageBatch, namespace=owner.spec.namespace
    ):
        batch = imagebatch.ImageBatch.model_validate(resources.as_dict(found))
        status = batch.status or imagebatch.ImageBatchStatus()
        if batch.spec.tenant != name or status.phase in batchstatus.TERMINAL:
            continue
        if status.region is None:
            continue  # never enqueued: admission rejects it once the Tenant is gone
        away = await cleanup.cancel_everywhere(
            registry=context.registry, batch=batch, pool=dispatch.pool_of(owner)
        )
        assert batch.metadata.uid is not None
        context.index.orphan(batch.metadata.uid)
        left = f"; region(s) {', '.join(away)} when they answer" if away else ""
        await context.poster.post(
            batch=batch,
            event=reporting.Event(
                type="Warning",
                reason="TenantDeleted",
                message=f"tenant {name} was deleted: the batch's unfinished items are"
                f" cancelled{left}; finished ones are kept",
            ),
        )


async def _choose_region(
    *, context: Context, batch: imagebatch.ImageBatch, owner: tenant.Tenant
) -> imagebatch.ImageBatchStatus:
    """Admit: pick the region and record it and the pool (phase Pending) before
    enqueueing anything."""
    pool = dispatch.pool_of(owner)
    loads = await dispatch.measure(registry=context.registry, names=owner.spec.regions, pool=pool)
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
        await batchwrites.write_status(
            management=context.management,
            batch=batch,
            status=previous.model_copy(update={"phase": "Pending", "conditions": waiting}),
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
        pool=pool,
        enqueued_regions=[chosen],
        admitted_at=now,
        deadline=now + datetime.timedelta(seconds=owner.spec.sla.batch_deadline_seconds),
        counts=imagebatch.Counts(total=len(batch.spec.items), queued=len(batch.spec.items)),
        progress=f"0/{len(batch.spec.items)}",
        conditions=admitted,
        observed_generation=batch.metadata.generation,
    )
    await batchwrites.write_status(management=context.management, batch=batch, status=status)
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
    await batchwrites.write_status(management=context.management, batch=batch, status=status)
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
