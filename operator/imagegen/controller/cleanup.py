"""What a batch leaves behind in its regions, removed: queue keys once it is finished,
and its images and queue keys when it is deleted.

Deleting a batch never waits long on a region: each region gets CALL_SECONDS, and a
region that does not answer (its store or its Redis down) is written down as pending in
a ConfigMap of the operator's namespace (`PENDING`), which the sweep (`sweep_pending`)
retries every `cleanup_sweep_seconds` until the region answers. The ConfigMap survives an
operator restart, so nothing is forgotten.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence

import lightkube
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import redisconn, regions, supervision
from imagegen.api import imagebatch, objectstore
from imagegen.kube import objects
from imagegen.queue import core, keys
from imagegen.render import labels
from imagegen.storage import base

logger = logging.getLogger(__name__)

PENDING = "imagegen-pending-cleanup"
"""ConfigMap in the operator's namespace: `<region>.<tenant>.<batch uid>` -> JSON of the
pools whose queue keys are still to go."""
CALL_SECONDS = 5.0
"""Bound on one region's cleanup (list and delete the objects, forget the queue keys)."""

_AWAY: tuple[type[Exception], ...] = (base.StoreError, *regions.UNREACHABLE_ERRORS, TimeoutError)
"""A region's store or Redis not answering (in time): tried again later."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Leftover:
    """One batch's data in one region."""

    region: str
    tenant: str
    batch_uid: str
    pools: tuple[str, ...]
    """Queue pools the batch may have keys in."""

    @property
    def entry(self) -> str:
        """Its key in the pending ConfigMap (a valid ConfigMap key: [-._a-zA-Z0-9]+)."""
        return f"{self.region}.{self.tenant}.{self.batch_uid}"


def pools_of(*, tenant: str, pool: str | None) -> tuple[str, ...]:
    """The pools to clean: the batch's recorded one when known, else both it could have
    used (a batch dispatched by an operator that did not record it)."""
    if pool is not None:
        return (pool,)
    return (keys.SHARED, keys.dedicated(tenant=tenant))


async def release_queue(*, redis: redisconn.Client, region: str, pool: str, batch_uid: str) -> None:
    """Forget a finished batch's queue keys; its status holds everything now. A region
    that does not answer keeps them until the batch is deleted (which retries)."""
    try:
        async with asyncio.timeout(CALL_SECONDS):
            forgotten = await core.Queue(redis=redis, pool=pool).forget_batch(batch_uid=batch_uid)
    except _AWAY as error:
        logger.warning("queue keys stay in %s until deletion: %s", region, error)
        return
    logger.debug("queue keys of %d item(s) released in %s", forgotten, region)


async def delete_everywhere(
    *,
    registry: regions.Registry,
    management: lightkube.AsyncClient,
    namespace: str,
    leftovers: Iterable[Leftover],
) -> None:
    """Delete each leftover now; write down those whose region does not answer."""
    pending = [
        leftover
        for leftover in leftovers
        if not await delete_one(registry=registry, leftover=leftover)
    ]
    if pending:
        await _patch_pending(
            management=management,
            namespace=namespace,
            changes={
                leftover.entry: json.dumps({"pools": list(leftover.pools)}) for leftover in pending
            },
        )


async def delete_one(*, registry: regions.Registry, leftover: Leftover) -> bool:
    """Delete one batch's objects and queue keys in one region; False when the region
    did not answer in time (or is no longer configured: then there is nothing to do)."""
    region = registry.get(leftover.region)
    if region is None:
        return True
    prefix = objectstore.batch_prefix(tenant=leftover.tenant, batch_uid=leftover.batch_uid)
    try:
        async with asyncio.timeout(CALL_SECONDS):
            deleted = 0
            if region.store is not None:
                deleted = await region.store.delete_prefix(prefix=prefix)
            for pool in leftover.pools:
                await core.Queue(redis=region.redis, pool=pool).forget_batch(
                    batch_uid=leftover.batch_uid
                )
    except _AWAY as error:
        logger.warning(
            "batch %s: cleanup in %s deferred to the sweep: %s",
            leftover.batch_uid,
            leftover.region,
            error or type(error).__name__,
        )
        return False
    logger.info(
        "batch %s: %d object(s) and its queue keys deleted in %s",
        leftover.batch_uid,
        deleted,
        leftover.region,
    )
    return True


async def sweep_pending(
    *, registry: regions.Registry, management: lightkube.AsyncClient, namespace: str
) -> int:
    """Retry every pending cleanup once; return how many are still pending."""
    found = await objects.get_or_none(management, core_v1.ConfigMap, PENDING, namespace=namespace)
    entries = dict(found.data or {}) if found is not None else {}
    done: dict[str, str | None] = {}
    for entry, raw in entries.items():
        leftover = parse_entry(entry=entry, raw=raw)
        if leftover is None or await delete_one(registry=registry, leftover=leftover):
            done[entry] = None
    if done:
        await _patch_pending(management=management, namespace=namespace, changes=done)
    return len(entries) - len(done)


async def sweep_forever(
    *,
    registry: regions.Registry,
    management: lightkube.AsyncClient,
    namespace: str,
    interval_seconds: float,
) -> None:
    """`sweep_pending` every interval until cancelled."""
    while True:
        try:
            await sweep_pending(registry=registry, management=management, namespace=namespace)
        except objects.CALL_ERRORS as error:
            logger.warning("cleanup sweep failed, next try in %ss: %s", interval_seconds, error)
        await asyncio.sleep(interval_seconds)


def parse_entry(*, entry: str, raw: str) -> Leftover | None:
    """The leftover a pending ConfigMap entry names, or None for one that is malformed
    (dropped: nothing could clean it)."""
    region, _, rest = entry.partition(".")
    tenant, _, batch_uid = rest.partition(".")
    try:
        pools = tuple(str(pool) for pool in json.loads(raw)["pools"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (region and tenant and batch_uid):
        return None
    return Leftover(region=region, tenant=tenant, batch_uid=batch_uid, pools=pools)


async def _patch_pending(
    *, management: lightkube.AsyncClient, namespace: str, changes: dict[str, str | None]
) -> None:
    """Add (a value) or remove (None) entries with one merge patch; create the ConfigMap
    on first use."""
    try:
        await management.patch(
            core_v1.ConfigMap,
            PENDING,
            {"data": changes},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    except lightkube.ApiError as error:
        if objects.status_of(error) != objects.NOT_FOUND:
            raise
        data = {key: value for key, value in changes.items() if value is not None}
        if data:
            await management.create(
                core_v1.ConfigMap(
                    metadata=lightkube.models.meta_v1.ObjectMeta(
                        name=PENDING,
                        namespace=namespace,
                        labels=labels.managed(),
                    ),
                    data=data,
                )
            )


def recorded_regions(
    *, configured: Sequence[str], status: imagebatch.ImageBatchStatus
) -> list[str]:
    """Every region the batch's items may be in, by what its status recorded at dispatch
    and failover, in `configured` order; a batch dispatched by an operator that recorded
    only its current region may have failed over from any configured one. A batch never
    dispatched has none."""
    if status.enqueued_regions:
        names = {*status.enqueued_regions, *([status.region] if status.region else [])}
    elif status.region is not None:
        names = set(configured)
    else:
        names = set()
    return [name for name in configured if name in names]


def leftovers_of(
    *, configured: Sequence[str], tenant: str, batch_uid: str,
    status: imagebatch.ImageBatchStatus,
) -> list[Leftover]:  # fmt: skip
    """Where a deleted batch may have data (a failed-over batch has images in two
    regions), in the pool its status recorded."""
    pools = pools_of(tenant=tenant, pool=status.pool)
    return [
        Leftover(region=name, tenant=tenant, batch_uid=batch_uid, pools=pools)
        for name in recorded_regions(configured=configured, status=status)
    ]


async def cancel_everywhere(
    *, registry: regions.Registry, batch: imagebatch.ImageBatch, pool: str | None = None
) -> list[str]:
    """Cancel the batch's queued and running items in every region it was enqueued in,
    in the pool its status recorded (else `pool`, else both it could have used); return
    the regions that did not answer in time. Finished items keep their results."""
    status = batch.status or imagebatch.ImageBatchStatus()
    assert batch.metadata.uid is not None
    pools = pools_of(tenant=batch.spec.tenant, pool=status.pool or pool)
    away = []
    for name in recorded_regions(configured=registry.names(), status=status):
        region = registry.get(name)
        assert region is not None
        try:
            async with asyncio.timeout(CALL_SECONDS):
                for each in pools:
                    await core.Queue(redis=region.redis, pool=each).cancel_batch(
                        batch_uid=batch.metadata.uid
                    )
        except _AWAY as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("batch %s: not cancelled in %s: %s", batch.metadata.name, name, error)
            away.append(name)
    return away


async def on_deleted(
    *,
    registry: regions.Registry,
    management: lightkube.AsyncClient,
    namespace: str,
    batch: imagebatch.ImageBatch,
) -> None:
    """The batch's finalizer: its images and queue keys go in every region they may be
    in, now or (a region that does not answer) by the sweep. Whether its Tenant still
    exists does not matter: the status says where its data is."""
    if batch.metadata.uid is None:
        return
    await delete_everywhere(
        registry=registry,
        management=management,
        namespace=namespace,
        leftovers=leftovers_of(
            configured=registry.names(),
            tenant=batch.spec.tenant,
            batch_uid=batch.metadata.uid,
            status=batch.status or imagebatch.ImageBatchStatus(),
        ),
    )
