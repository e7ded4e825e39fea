"""Dispatch: choose one region for a batch and put all its items in that region's queue.

The choice: the Tenant's allowed regions in its order of preference, skipping regions
whose Redis does not answer, and passing over a region whose pool already has
`backlog_limit` items queued per unit of its weight (the region's relative capacity) when
a later region has fewer; if every region is that busy, the one with the fewest queued
items per unit of weight. Enqueueing is keyed by batch uid and item id, so dispatching
the same batch twice (a handler re-run after a crash) enqueues nothing twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence

from imagegen import regions, supervision
from imagegen.api import imagebatch, tenant
from imagegen.queue import core, keys, model, payload

logger = logging.getLogger(__name__)

BACKLOG_LIMIT = 1000
"""Queued items in a pool past which a less preferred, less busy region is chosen."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RegionLoad:
    """A region as dispatch sees it."""

    reachable: bool
    queued: int = 0
    weight: int = 1
    """Relative capacity: a region of weight 2 is as busy as one of weight 1 with half
    its queue."""


def pool_of(owner: tenant.Tenant) -> str:
    """The queue pool that serves a Tenant's items."""
    if owner.spec.workers.pool == "shared":
        return keys.SHARED
    assert owner.metadata.name is not None
    return keys.dedicated(tenant=owner.metadata.name)


def choose(
    *,
    preference: Sequence[str],
    loads: Mapping[str, RegionLoad],
    backlog_limit: int = BACKLOG_LIMIT,
) -> str | None:
    """The region to dispatch to, or None when no allowed region is reachable."""
    reachable = [name for name in preference if name in loads and loads[name].reachable]
    if not reachable:
        return None
    under_limit = [
        name for name in reachable if loads[name].queued < backlog_limit * loads[name].weight
    ]
    if under_limit:
        return under_limit[0]
    return min(reachable, key=lambda name: loads[name].queued / loads[name].weight)


async def measure(
    *, registry: regions.Registry, names: Sequence[str], pool: str
) -> dict[str, RegionLoad]:
    """Reachability and queued items of the pool in each named region, all at once."""

    async def one(name: str) -> RegionLoad:
        region = registry.get(name)
        if region is None:
            return RegionLoad(reachable=False)
        try:
            depth = await core.Queue(redis=region.redis, pool=pool).depth()
        except regions.UNREACHABLE_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("dispatch: region %s unreachable: %s", name, error)
            return RegionLoad(reachable=False)
        queued = sum(lane.queued for lane in depth.values())
        return RegionLoad(reachable=True, queued=queued, weight=region.weight)

    loads = await asyncio.gather(*(one(name) for name in names))
    return dict(zip(names, loads, strict=True))


async def enqueue(
    *,
    region: regions.RegionClient,
    batch: imagebatch.ImageBatch,
    owner: tenant.Tenant,
    pool: str,
    items: Sequence[imagebatch.Item] | None = None,
    correlation_id: str | None = None,
) -> int:
    """Put the batch's items (or the given subset) in the pool's queue in the region (the
    pool recorded in its status); return how many were new there. The owner gives the
    tier and providers; the correlation id rides in every item's payload to the worker."""
    assert batch.metadata.uid is not None
    queue = core.Queue(redis=region.redis, pool=pool)
    reference = model.BatchRef(
        uid=batch.metadata.uid,
        tenant=batch.spec.tenant,
        tier=owner.spec.tier,
        priority=batch.spec.priority,
    )
    specs = [
        model.ItemSpec(
            id=item.id,
            payload=work_item(
                item=item, batch=batch, owner=owner, correlation_id=correlation_id
            ).to_json(),
        )
        for item in (batch.spec.items if items is None else items)
    ]
    return await queue.enqueue_batch(batch=reference, items=specs)


def work_item(
    *,
    item: imagebatch.Item,
    batch: imagebatch.ImageBatch,
    owner: tenant.Tenant,
    correlation_id: str | None = None,
) -> payload.WorkItem:
    """What a worker needs for one item: the item with the batch's defaults filled in."""
    return payload.WorkItem.for_item(
        item=item,
        defaults=batch.spec.defaults,
        providers=[provider.name for provider in owner.spec.workers.providers],
        correlation_id=correlation_id,
    )
