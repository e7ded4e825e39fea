"""The batches the reporters follow, in memory: fed by the ImageBatch watch (every event,
the initial listing included, so a restarted operator knows every active batch again) and
by dispatch the moment it has enqueued a batch. No I/O: a reporter asks it which batches
are active in its region and which pools they use, instead of asking the apiserver.

A batch is here while its items are in a queue (phases Queued and Running, pool
recorded), and after that while a region it failed over from may still hold leftovers.
Listeners (one per region's reporter) are told which batch to look at, and where.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pydantic

from imagegen.api import imagebatch
from imagegen.controller import bodies, reporting
from imagegen.queue import model

logger = logging.getLogger(__name__)

Listener = Callable[[str, str], None]
"""Called with (region, batch uid) when the batch needs a look by that region's reporter."""


@dataclasses.dataclass(kw_only=True)
class Entry:
    """One batch as the reporters know it."""

    batch: imagebatch.ImageBatch
    """Its latest metadata and spec (spec.cancel, generation) from the watch."""
    follow: reporting.Follow
    """The reporter's state of it (its status as last written or read)."""
    ended: bool = False
    """It has finished (or was seen finished): no longer followed, here for leftovers."""
    orphaned: bool = False
    """Its Tenant was deleted: its items are to be cancelled."""
    deleting: bool = False
    """Being deleted: the finalizer cancels and cleans it; reporters leave it alone."""
    retired: set[str] = dataclasses.field(default_factory=set)
    """Regions it failed over from where its leftovers are cancelled and released."""
    finished_elsewhere: dict[str, model.ItemProgress] = dataclasses.field(default_factory=dict)
    """Items that a region it failed over from finished unseen (the operator had lost that
    region), found when the region answered again: counted once, with that region's result,
    and not made again where the batch runs now."""
    cancelled_here: set[str] = dataclasses.field(default_factory=set)
    """Of those, the ones already cancelled in the batch's current region."""

    @property
    def uid(self) -> str:
        """The batch's uid."""
        assert self.batch.metadata.uid is not None
        return self.batch.metadata.uid

    @property
    def status(self) -> imagebatch.ImageBatchStatus:
        """The status as the reporter last wrote it, else as the apiserver gave it."""
        return self.follow.status

    @property
    def cancel(self) -> bool:
        """Whether its items are to be cancelled: spec.cancel, or its Tenant is gone."""
        return self.batch.spec.cancel or self.orphaned

    def leftovers(self) -> list[str]:
        """Regions it left that may still hold its items."""
        return reporting.leftover_regions(status=self.status, retired=self.retired)


class Index:
    """Batches by uid, with the regions and pools they are active in."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call `listener(region, uid)` whenever a batch needs a look in a region."""
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, uid: str) -> Entry | None:
        """The batch's entry, if it is here."""
        return self._entries.get(uid)

    def observe(self, *, body: Mapping[str, Any]) -> None:
        """Take in the ImageBatch as one watch event brings it (not a deletion's: a deleted
        batch is `forget`-ten by its finalizer)."""
        metadata = body.get("metadata") or {}
        uid = metadata.get("uid")
        if not uid:
            return
        known = self._entries.get(uid)
        if metadata.get("deletionTimestamp"):
            if known is not None:
                known.deleting = True
            return
        if known is None and not _may_matter(body.get("status") or {}):
            return  # most events are of finished batches: no need to read them whole
        batch = _parse(body)
        if batch is None:
            return
        if known is not None:
            cancelled = batch.spec.cancel and not known.batch.spec.cancel
            known.batch = batch
            if cancelled:
                self._look(known)
            return
        status = batch.status or imagebatch.ImageBatchStatus()
        followed = reporting.followable(status)
        entry = Entry(batch=batch, follow=reporting.Follow(status=status), ended=not followed)
        if not followed and not entry.leftovers():
            return
        self._entries[uid] = entry
        self._look(entry)

    def dispatched(
        self, *, batch: imagebatch.ImageBatch, status: imagebatch.ImageBatchStatus, clock: float
    ) -> None:
        """Dispatch has enqueued the batch and written `status` at `clock`: follow it."""
        if batch.metadata.uid is None or not reporting.followable(status):
            return
        if batch.metadata.uid in self._entries:
            return
        entry = Entry(batch=batch, follow=reporting.Follow(status=status, written_at=clock))
        self._entries[batch.metadata.uid] = entry
        self._look(entry)

    def orphan(self, uid: str) -> None:
        """The batch's Tenant is gone: its items are to be cancelled."""
        entry = self._entries.get(uid)
        if entry is not None and not entry.orphaned:
            entry.orphaned = True
            self._look(entry)

    def found_finished(self, uid: str, *, items: Mapping[str, model.ItemProgress]) -> None:
        """A region the batch left finished `items` (by id): tell its current region."""
        entry = self._entries.get(uid)
        if entry is None:
            return
        new = {item_id: item for item_id, item in items.items()
               if item_id not in entry.finished_elsewhere}  # fmt: skip
        if new:
            entry.finished_elsewhere.update(new)
            self._look(entry)

    def cancelled_in_current(self, uid: str, *, item_ids: Iterable[str]) -> None:
        """The batch's current region has cancelled its copies of these items."""
        entry = self._entries.get(uid)
        if entry is not None:
            entry.cancelled_here.update(item_ids)

    def update(self, uid: str, *, follow: reporting.Follow) -> None:
        """The reporter's new state of a batch; when it names another region (a failover),
        that region's reporter takes the batch over, and the region left tidies up."""
        entry = self._entries.get(uid)
        if entry is None:
            return
        before = entry.follow.status.region
        entry.follow = follow
        if follow.status.region != before:
            entry.retired.discard(follow.status.region or "")
            self._look(entry)

    def finished(self, uid: str) -> None:
        """The batch has ended (its last status is written): stop following it, and keep
        it only while a region it left may hold leftovers."""
        entry = self._entries.get(uid)
        if entry is None:
            return
        entry.ended = True
        if not entry.leftovers():
            self._entries.pop(uid, None)

    def retire(self, uid: str, *, region: str) -> None:
        """The batch's leftovers in `region` are cancelled and released."""
        entry = self._entries.get(uid)
        if entry is None:
            return
        entry.retired.add(region)
        if entry.ended and not entry.leftovers():
            self._entries.pop(uid, None)

    def forget(self, uid: str) -> None:
        """The batch is gone (deleted)."""
        self._entries.pop(uid, None)

    def followed_in(self, region: str) -> list[Entry]:
        """Batches whose items are in the region's queue now, not being deleted."""
        return [
            entry
            for entry in self._entries.values()
            if not entry.ended and not entry.deleting and entry.follow.status.region == region
        ]

    def leftovers_in(self, region: str) -> list[Entry]:
        """Batches that left the region and may still have items there."""
        return [
            entry
            for entry in self._entries.values()
            if not entry.deleting and region in entry.leftovers()
        ]

    def pools_in(self, region: str) -> set[str]:
        """Queue pools of the batches followed in the region."""
        return {str(entry.status.pool) for entry in self.followed_in(region)}

    def of_tenant(self, tenant: str) -> Iterator[Entry]:
        """The Tenant's batches that are here."""
        return (entry for entry in self._entries.values() if entry.batch.spec.tenant == tenant)

    def _look(self, entry: Entry) -> None:
        regions = entry.leftovers()
        if not entry.ended and entry.follow.status.region is not None:
            regions.append(entry.follow.status.region)
        for region in regions:
            for listener in self._listeners:
                listener(region, entry.uid)


def _may_matter(status: Mapping[str, Any]) -> bool:
    """Whether a batch not yet here may need following (or tidying after a failover)."""
    return status.get("phase") in reporting.FOLLOWED or len(status.get("enqueuedRegions") or ()) > 1


def _parse(body: Mapping[str, Any]) -> imagebatch.ImageBatch | None:
    try:
        return imagebatch.ImageBatch.model_validate(bodies.plain(body))
    except pydantic.ValidationError as error:
        # The CRD admits only what the model does; an object that still fails (an older
        # CRD's leftover) is left to the handlers, which report it.
        logger.warning("batch %s: not followed: %s", body["metadata"].get("name"), error)
        return None
