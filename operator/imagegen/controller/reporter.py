"""One reporter per region: carries the progress of the region's batches into their status.

It listens to the channels of the pools its batches use (`poolchannels`: sharded pub/sub,
so a Redis Cluster serves each from the pool's shard), gathers the batches named, and
reads the progress of those alone, one Lua call each; `reporting` decides what to write.
Pub/sub drops what arrives while nobody listens, so a slow safety poll reads every batch
of the region now and then, and everything is read again after a reconnect or an outage.
Which batches are active here comes from `batchindex` (the watch and dispatch): no call
to the apiserver is made to follow a batch, only its status writes and, when items have
to move, one read of its Tenant.

When the region's Redis has not answered for `failover_after_seconds`, its batches move to
another region (`relocation`); when a region a batch left answers again, its leftovers
there are cancelled and released, so that region stops working on the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from redis import exceptions as redis_errors

from imagegen import regions, supervision
from imagegen.api import tenant
from imagegen.controller import (
    batchindex,
    batchlogs,
    batchstatus,
    batchwrites,
    cleanup,
    observe,
    poolchannels,
    relocation,
    reporting,
    storecondition,
)
from imagegen.kube import objects
from imagegen.queue import core, model, storehealth

logger = logging.getLogger(__name__)

AWAY_ERRORS: tuple[type[Exception], ...] = (
    *regions.UNREACHABLE_ERRORS,
    TimeoutError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,
)
"""The region's Redis does not answer, or its cluster cannot serve the pool's slot now."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """How often a reporter looks without being told to."""

    safety_poll_seconds: float = 10.0
    """Every batch of the region is read this often even when its channel is silent: pub/sub
    loses what is published while the connection is down. Ten seconds keeps 1,000 active
    batches at 100 Lua calls a second, and bounds how late a lost message is noticed."""
    probe_seconds: float = 1.0
    """While the region does not answer: how often to try again (and to count towards the
    failover); also the pause before listening again after the channel connection broke."""
    listen_seconds: float = 0.25
    """Longest wait for a message before the listener checks which pools to listen to."""
    failover_after_seconds: float = 60.0
    """The region away this long: its batches' unfinished items move to another region."""
    failover_retry_seconds: float = 15.0
    """A batch that found no region to move to tries again after this long (each try
    reads its Tenant once)."""


class Reporter:
    """The reporter of one region."""

    def __init__(
        self,
        *,
        region: regions.RegionClient,
        index: batchindex.Index,
        mover: relocation.Mover,
        settings: Settings,
    ) -> None:
        self.region = region
        self._index = index
        self._mover = mover
        self._settings = settings
        self._dirty: set[str] = set()
        self._due_at: dict[str, float] = {}
        self._retry_failover_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._reach = reporting.Reach()
        self._next_poll = 0.0
        self._troubles: dict[str, storehealth.Trouble | None] = {}

    @property
    def name(self) -> str:
        """The region's name."""
        return self.region.name

    def poke(self, uid: str) -> None:
        """Read this batch at the next round (the index or the channel says so)."""
        self._dirty.add(uid)
        self._wake.set()

    async def run(self) -> None:
        """Report until cancelled; a listener task beside it feeds it the channel."""
        channels = poolchannels.Listener(
            region=self.region, index=self._index, poke=self.poke,
            wait_seconds=self._settings.listen_seconds,
            retry_seconds=self._settings.probe_seconds,
        )  # fmt: skip
        listener = asyncio.create_task(channels.run(), name=f"reporter {self.name}: listen")
        listener.add_done_callback(lambda _: self._wake.set())
        try:
            while True:
                await self._pause()
                if listener.done():
                    listener.result()  # its error, if it died of one
                    raise RuntimeError(f"reporter {self.name}: the listener ended")
                await self._round()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _pause(self) -> None:
        wait = self._seconds_to_next(time.monotonic())
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
        supervision.stop_if_cancelled()  # one a Redis call of the last round swallowed
        self._wake.clear()

    def _seconds_to_next(self, clock: float) -> float:
        if self._dirty:
            return 0.0
        moments = [self._next_poll, *self._due_at.values()]
        if self._reach.unreachable_since is not None and self._index.followed_in(self.name):
            moments.append(clock + self._settings.probe_seconds)
        return max(0.0, min(moments) - clock)

    def _take_due(self, clock: float) -> list[str]:
        due = set(self._dirty)
        self._dirty.clear()
        due |= {uid for uid, at in self._due_at.items() if at <= clock}
        if clock >= self._next_poll:
            due |= {entry.uid for entry in self._index.followed_in(self.name)}
            self._next_poll = clock + self._settings.safety_poll_seconds
        for uid in due:
            self._due_at.pop(uid, None)
        return sorted(due)

    async def _round(self) -> None:
        clock = time.monotonic()
        if self._reach.unreachable_since is not None:
            # Every batch again, once a probe interval (the failover clock ticks meanwhile).
            self._dirty |= {entry.uid for entry in self._index.followed_in(self.name)}
        due = self._take_due(clock)
        self._troubles.clear()
        try:
            for uid in due:
                await self._report(uid)
            if self._index.leftovers_in(self.name):
                await self._tidy_leftovers()
        except AWAY_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            await self._away(error=error, clock=clock)
            return
        if self._reach.unreachable_since is not None:
            logger.info("region %s: Redis answers again", self.name)
            self._reach = reporting.Reach()
            self._retry_failover_at.clear()
            self._next_poll = 0.0  # what was published meanwhile is lost: read them all

    async def _away(self, *, error: Exception, clock: float) -> None:
        if self._reach.unreachable_since is None:
            logger.warning("region %s: Redis unreachable: %s", self.name, error or type(error))
        self._reach = reporting.reach_failed(self._reach, clock=clock)
        if reporting.fail_over_due(
            self._reach, clock=clock, after_seconds=self._settings.failover_after_seconds
        ):
            await self._fail_over_all(clock=clock)

    async def _report(self, uid: str) -> None:
        """Read one batch's progress and do what `reporting.step` says."""
        entry = self._index.get(uid)
        if entry is None or entry.ended or entry.deleting or entry.status.region != self.name:
            return
        with batchlogs.bound_batch(entry.batch, region=self.name):
            try:
                await self._report_entry(entry)
            except redis_errors.RedisError as error:
                if isinstance(error, AWAY_ERRORS):
                    raise
                # Not an outage: an answer we did not expect. Logged, and tried again.
                logger.error("batch %s: progress not read: %s", entry.batch.metadata.name, error)
                self._due_at[uid] = time.monotonic() + self._settings.safety_poll_seconds

    async def _report_entry(self, entry: batchindex.Entry) -> None:
        uid, pool = entry.uid, str(entry.status.pool)
        queue = core.Queue(redis=self.region.redis, pool=pool)
        if reporting.wants_cancel(cancel=entry.cancel, follow=entry.follow):
            await queue.cancel_batch(batch_uid=uid)
            self._index.update(uid, follow=dataclasses.replace(entry.follow, cancel_sent=True))
        made_elsewhere = sorted(entry.finished_elsewhere.keys() - entry.cancelled_here)
        if made_elsewhere:
            await queue.cancel_items(batch_uid=uid, item_ids=made_elsewhere, running_too=True)
            self._index.cancelled_in_current(uid, item_ids=made_elsewhere)
        progress = await queue.progress(batch_uid=uid)
        trouble = await self._trouble(pool)
        current = self._index.get(uid)
        if current is None or current.deleting:
            return  # deleted meanwhile: its finalizer has the last word
        progress = batchstatus.with_finished_elsewhere(
            progress=progress, finished=current.finished_elsewhere
        )
        step = reporting.step(
            batch=current.batch, follow=current.follow, cancel=current.cancel,
            progress=progress, trouble=trouble, now=self._mover.clock(), clock=time.monotonic(),
        )  # fmt: skip
        if step.requeue:
            await self._requeue(current, step.requeue)
        elif step.write is not None:
            await self._apply(current, step)
        if step.recheck_in is not None:
            self._due_at[uid] = time.monotonic() + step.recheck_in

    async def _apply(self, entry: batchindex.Entry, step: reporting.Step) -> None:
        assert step.write is not None
        try:
            await batchwrites.write_status(
                management=self._mover.management, batch=entry.batch, status=step.write
            )
        except objects.CALL_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            if objects.status_of(error) == objects.NOT_FOUND:
                self._index.forget(entry.uid)
                return
            logger.warning("batch %s: status not written: %s", entry.batch.metadata.name, error)
            self._due_at[entry.uid] = time.monotonic() + self._settings.probe_seconds
            return
        self._index.update(entry.uid, follow=step.follow)
        if step.finished:
            observe.batch_finished(tenant_name=entry.batch.spec.tenant, status=step.write)
            logger.info("batch %s: %s", step.write.phase, step.write.progress)
            await cleanup.release_queue(
                redis=self.region.redis, region=self.name,
                pool=str(step.write.pool), batch_uid=entry.uid,
            )  # fmt: skip
            self._index.finished(entry.uid)
        if step.event is not None:
            await self._mover.poster.post(batch=entry.batch, event=step.event)

    async def _requeue(self, entry: batchindex.Entry, item_ids: tuple[str, ...]) -> None:
        try:
            there = await batchwrites.still_there(
                management=self._mover.management, batch=entry.batch
            )
        except objects.CALL_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("batch %s: not read: %s", entry.batch.metadata.name, error)
            self._due_at[entry.uid] = time.monotonic() + self._settings.probe_seconds
            return
        if not there:
            self._index.forget(entry.uid)
            return
        owner = await self._owner(entry)
        if owner is None:
            return
        await self._mover.requeue(entry=entry, owner=owner, region=self.region, item_ids=item_ids)
        self.poke(entry.uid)

    async def _owner(self, entry: batchindex.Entry) -> tenant.Tenant | None:
        """The batch's Tenant, to move its items; None when it is gone (the batch is
        cancelled instead) or not read now (tried again later)."""
        try:
            owner = await batchwrites.tenant_named(
                management=self._mover.management, name=entry.batch.spec.tenant
            )
        except objects.CALL_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("batch %s: Tenant not read: %s", entry.batch.metadata.name, error)
            self._due_at[entry.uid] = time.monotonic() + self._settings.probe_seconds
            return None
        if owner is None:
            logger.warning("batch %s: its Tenant is gone: cancelled", entry.batch.metadata.name)
            self._index.orphan(entry.uid)
        return owner

    async def _trouble(self, pool: str) -> storehealth.Trouble | None:
        if pool not in self._troubles:
            self._troubles[pool] = await storecondition.read(region=self.region, pool=pool)
        return self._troubles[pool]

    async def _fail_over_all(self, *, clock: float) -> None:
        for entry in self._index.followed_in(self.name):
            if self._retry_failover_at.get(entry.uid, 0.0) > clock:
                continue
            with batchlogs.bound_batch(entry.batch, region=self.name):
                owner = await self._owner(entry)
                follow = await self._mover.fail_over(entry=entry, owner=owner) if owner else None
            if follow is None:
                self._retry_failover_at[entry.uid] = clock + self._settings.failover_retry_seconds
                continue
            self._retry_failover_at.pop(entry.uid, None)
            self._index.update(entry.uid, follow=follow)

    async def _tidy_leftovers(self) -> None:
        """What batches that failed over left in this region, now that it answers again:
        its queued items are cancelled; what it finished meanwhile is counted once (and
        not made again where the batch runs now); what it is still making is left to
        finish, and looked at again shortly. Then its keys are released."""
        for entry in self._index.leftovers_in(self.name):
            queue = core.Queue(redis=self.region.redis, pool=str(entry.status.pool))
            if entry.ended:
                # Nothing to save: whatever it still holds is work nobody needs.
                await self._leftovers_cancelled(
                    entry, await queue.cancel_batch(batch_uid=entry.uid)
                )
                await self._retire(entry, queue)
                continue
            left = reporting.leftovers(await queue.progress(batch_uid=entry.uid))
            cancelled = await queue.cancel_items(
                batch_uid=entry.uid, item_ids=left.queued, running_too=False
            )
            await self._leftovers_cancelled(entry, cancelled)
            if left.finished:
                self._found_finished(entry, left.finished)
            written = reporting.finished_ids(entry.status)
            if left.running or not left.finished.keys() <= written:
                # Look again once the current region has counted them and these finished.
                self._due_at[entry.uid] = time.monotonic() + self._settings.probe_seconds
                continue
            await self._retire(entry, queue)

    async def _retire(self, entry: batchindex.Entry, queue: core.Queue) -> None:
        await queue.forget_batch(batch_uid=entry.uid)
        self._index.retire(entry.uid, region=self.name)

    async def _leftovers_cancelled(self, entry: batchindex.Entry, count: int) -> None:
        if not count:
            return
        observe.leftovers_cancelled(
            tenant_name=entry.batch.spec.tenant, region=self.name, count=count
        )
        event = reporting.leftovers_cancelled_event(
            region=self.name, count=count, current=entry.status.region
        )
        with batchlogs.bound_batch(entry.batch, region=self.name):
            logger.info("batch %s: %s", entry.batch.metadata.name, event.message)
        await self._mover.poster.post(batch=entry.batch, event=event)

    def _found_finished(
        self, entry: batchindex.Entry, finished: dict[str, model.ItemProgress]
    ) -> None:
        new = finished.keys() - entry.finished_elsewhere.keys()
        self._index.found_finished(entry.uid, items=finished)
        if new:
            with batchlogs.bound_batch(entry.batch, region=self.name):
                logger.info(
                    "batch %s: region %s answers again: %d item(s) it finished meanwhile are"
                    " counted once, not made again in %s",
                    entry.batch.metadata.name, self.name, len(new), entry.status.region,
                )  # fmt: skip


def reporters(
    *,
    registry: regions.Registry,
    index: batchindex.Index,
    mover: relocation.Mover,
    settings: Settings,
) -> dict[str, Reporter]:
    """A reporter per configured region, each told by the index of its batches."""
    made = {
        name: Reporter(region=client, index=index, mover=mover, settings=settings)
        for name, client in registry.clients.items()
    }

    def look(region: str, uid: str) -> None:
        found = made.get(region)
        if found is not None:
            found.poke(uid)

    index.listen(look)
    return made
