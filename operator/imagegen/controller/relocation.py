"""Moving a followed batch's items: to another region when its region has been away too
long (failover), and back into its own region's queue when that region's Redis lost them.

Both read the batch's Tenant once (its allowed regions, tier and providers: what a queued
item carries); the pool is the one recorded at dispatch. A move the management apiserver
refuses or does not answer is given up for now and tried again by the reporter.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable

import lightkube

from imagegen import regions, supervision
from imagegen.api import tenant
from imagegen.controller import (
    batchevents,
    batchindex,
    batchlogs,
    batchwrites,
    bodies,
    dispatch,
    observe,
    reporting,
)
from imagegen.kube import objects

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Mover:
    """What a move needs besides the batch."""

    registry: regions.Registry
    management: lightkube.AsyncClient
    poster: batchevents.Poster
    clock: Callable[[], datetime.datetime] = bodies.utc_now

    async def fail_over(
        self, *, entry: batchindex.Entry, owner: tenant.Tenant
    ) -> reporting.Follow | None:
        """Move the batch's unfinished items out of its region to another region the Tenant
        allows; the new state, or None when no region answers (or the write failed).

        As at dispatch, the new region is recorded before anything is enqueued there: an
        operator that stops in between finds the items missing there and enqueues them
        (`reporting.missing`). Items that finished keep their results; the unfinished ones
        are made in the new region, last first, unless the old region finishes them and
        answers again before the new one gets to them (`reporter`)."""
        status, batch = entry.status, entry.batch
        assert status.region is not None
        assert status.pool is not None
        away_from = status.region
        candidates = [name for name in owner.spec.regions if name != away_from]
        loads = await dispatch.measure(registry=self.registry, names=candidates, pool=status.pool)
        chosen = dispatch.choose(preference=candidates, loads=loads)
        target = self.registry.get(chosen) if chosen else None
        if chosen is None or target is None:
            logger.warning("batch %s: no region to fail over to", batch.metadata.name)
            return None
        unfinished = reporting.unfinished(batch=batch, status=status)
        moved, event = reporting.failed_over(
            batch=batch, status=status, to=chosen, moved=len(unfinished), now=self.clock()
        )
        try:
            await batchwrites.write_status(management=self.management, batch=batch, status=moved)
        except objects.CALL_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("batch %s: failover not recorded: %s", batch.metadata.name, error)
            return None
        follow = dataclasses.replace(
            entry.follow, status=moved, written_at=time.monotonic(), cancel_sent=False
        )
        try:
            # Last first: a region that only the operator lost goes on with the batch from
            # the front of its queue, so the new one starts from the other end, and the
            # two meet (each making what the other made) only if the old region stays
            # away that long. When it answers again, what it finished is counted and
            # cancelled here (`reporter`), what it had not started is cancelled there.
            await dispatch.enqueue(
                region=target, batch=batch, owner=owner, pool=status.pool,
                items=unfinished[::-1], correlation_id=batchlogs.correlation_of(batch),
            )  # fmt: skip
        except regions.UNREACHABLE_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            # Recorded already: the new region's reporter enqueues them when it answers.
            logger.warning(
                "batch %s: not yet enqueued in %s: %s", batch.metadata.name, chosen, error
            )
        observe.batch_failed_over(tenant_name=batch.spec.tenant, away_from=away_from)
        logger.warning("batch %s: %s", batch.metadata.name, event.message)
        await self.poster.post(batch=batch, event=event)
        return follow

    async def requeue(
        self,
        *,
        entry: batchindex.Entry,
        owner: tenant.Tenant,
        region: regions.RegionClient,
        item_ids: tuple[str, ...],
    ) -> None:
        """Enqueue again the items the region's queue lost (those already there again are
        skipped), then tell: a Warning Event and the data-loss metric."""
        batch, pool = entry.batch, entry.status.pool
        assert pool is not None
        wanted = set(item_ids)
        added = await dispatch.enqueue(
            region=region, batch=batch, owner=owner, pool=pool,
            items=[item for item in batch.spec.items if item.id in wanted],
            correlation_id=batchlogs.correlation_of(batch),
        )  # fmt: skip
        observe.queue_data_lost(tenant_name=batch.spec.tenant, region=region.name)
        event = reporting.lost_data_event(region=region.name, count=len(item_ids))
        logger.warning("batch %s: %s (%d new)", batch.metadata.name, event.message, added)
        await self.poster.post(batch=batch, event=event)
