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
from collections.abc import Iterable

import lightkube
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import redisconn, regions, resources
from imagegen.api import imagebatch, objectstore, tenant
from imagegen.controller import dispatch
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
    """The pools to clean: the Tenant's own when known, else both it could have used."""
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
    found = await resources.get_or_none(management, core_v1.ConfigMap, PENDING, namespace=namespace)
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
        except lightkube.ApiError as error:
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
        if error.status.code != 404:
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


def leftovers_of(
    *, registry: regions.Registry, tenant: str, batch_uid: str, pool: str | None,
    batch_region: str | None, tenant_regions: Iterable[str] | None,
) -> list[Leftover]:  # fmt: skip
    """Where a deleted batch may have data: its region, and every region its Tenant
    allows (a failed-over batch has images in two; a prefix no region holds costs one
    listing), or every configured region when the Tenant is gone."""
    names = set(tenant_regions) if tenant_regions is not None else set(registry.names())
    if batch_region is not None:
        names.add(batch_region)
    pools = pools_of(tenant=tenant, pool=pool)
    return [
        Leftover(region=name, tenant=tenant, batch_uid=batch_uid, pools=pools)
        for name in registry.names()
        if name in names
    ]


async def on_deleted(
    *,
    registry: regions.Registry,
    management: lightkube.AsyncClient,
    namespace: str,
    batch: imagebatch.ImageBatch,
    owner: tenant.Tenant | None,
) -> None:
    """The batch's finalizer: its images and queue keys go in every region they may be
    in, now or (a region that does not answer) by the sweep."""
    if batch.metadata.uid is None:
        return
    status = batch.status or imagebatch.ImageBatchStatus()
    await delete_everywhere(
        registry=registry,
        management=management,
        namespace=namespace,
        leftovers=leftovers_of(
            registry=registry,
            tenant=batch.spec.tenant,
            batch_uid=batch.metadata.uid,
            pool=dispatch.pool_of(owner) if owner is not None else None,
            batch_region=status.region,
            tenant_regions=owner.spec.regions if owner is not None else None,
        ),
    )
