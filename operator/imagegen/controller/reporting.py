"""What a region's reporter decides, without I/O: for one batch given what its queue says,
the status to write (or not yet), the items to enqueue again, the Event worth posting and
when to look again; for the region, when it has been away long enough to fail over; for a
batch that failed over, which regions still hold its leftovers.

`controller.reporter` does the reading and writing these decisions call for. Write rules
are batchstatus's (phase changes, each further tenth, at most one write a second).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Collection
from typing import Literal

from imagegen.api import imagebatch
from imagegen.controller import batchstatus, conditions, storecondition
from imagegen.queue import model, storehealth

FOLLOWED: frozenset[str] = frozenset({"Queued", "Running"})
"""Phases in which a batch's items are in a region's queue and the reporter follows them."""
DEADLINE_MARGIN_SECONDS = 1.0
"""Status times are whole seconds and the deadline counts as passed only once a later
second is reached, so the look at a deadline comes this long after it."""

EventType = Literal["Normal", "Warning"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """An Event to post on the batch."""

    type: EventType
    reason: str
    message: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Follow:
    """What the reporter knows of one batch it follows."""

    status: imagebatch.ImageBatchStatus
    """The status last written by the reporter, or as read from the apiserver before it
    wrote any (after a restart, or as dispatch wrote it)."""
    written_at: float | None = None
    """When the reporter last wrote it (monotonic seconds); None before its first write."""
    cancel_sent: bool = False
    """The queue of the batch's region has been told to cancel it."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Step:
    """What to do after reading a batch's progress once."""

    follow: Follow
    """The reporter's state after the step (with `write` as the status last written)."""
    write: imagebatch.ImageBatchStatus | None = None
    """The status to patch now."""
    requeue: tuple[str, ...] = ()
    """Ids of unfinished items the region's queue no longer holds: enqueue them again
    (`lost_data_event` tells), then read again; nothing is written meanwhile."""
    finished: bool = False
    """`write` ends the batch: release its queue keys, count it against its SLA."""
    event: Event | None = None
    recheck_in: float | None = None
    """Seconds after which to read the batch again even if its channel says nothing: a
    write held back by the one-a-second rule, or the SLA deadline passing."""


def followable(status: imagebatch.ImageBatchStatus | None) -> bool:
    """Whether a batch with this status has items in a region's queue to follow."""
    return (
        status is not None
        and status.phase in FOLLOWED
        and status.region is not None
        and status.pool is not None
    )


def wants_cancel(*, cancel: bool, follow: Follow) -> bool:
    """Whether the region's queue must (still) be told to cancel the batch: `cancel` is
    spec.cancel, or the batch's Tenant is gone."""
    return cancel and not follow.cancel_sent


def missing(
    *,
    batch: imagebatch.ImageBatch,
    status: imagebatch.ImageBatchStatus,
    progress: model.BatchProgress,
) -> tuple[str, ...]:
    """Ids of the items the status says are unfinished and the region's queue does not
    know: its Redis lost them (or an enqueue was cut short)."""
    present = {item.id for item in progress.items}
    return tuple(
        item.id for item in unfinished(batch=batch, status=status) if item.id not in present
    )


def unfinished(
    *, batch: imagebatch.ImageBatch, status: imagebatch.ImageBatchStatus
) -> list[imagebatch.Item]:
    """The batch's items that have not succeeded or failed according to the status."""
    finished = {item.id for item in status.items or () if item.state in batchstatus.FINISHED_ITEMS}
    return [item for item in batch.spec.items if item.id not in finished]


def step(
    *,
    batch: imagebatch.ImageBatch,
    follow: Follow,
    cancel: bool,
    progress: model.BatchProgress,
    trouble: storehealth.Trouble | None,
    now: datetime.datetime,
    clock: float,
) -> Step:
    """Decide on one reading of the batch's progress in its region (`follow.status.region`)
    at wall time `now` and monotonic time `clock`."""
    if not cancel and not progress.cancel_requested:
        lost = missing(batch=batch, status=follow.status, progress=progress)
        if lost:
            return Step(follow=follow, requeue=lost)
    previous = follow.status
    wanted = batchstatus.from_progress(
        previous=previous,
        progress=batchstatus.with_carried_over(progress=progress, previous=previous),
        generation=batch.metadata.generation,
        now=now,
    )
    assert previous.region is not None
    wanted = storecondition.apply(
        status=wanted, trouble=trouble, region=previous.region,
        generation=batch.metadata.generation, now=now,
    )  # fmt: skip
    since = math.inf if follow.written_at is None else clock - follow.written_at
    if batchstatus.should_write(written=previous, wanted=wanted, seconds_since_write=since):
        changed = wanted.phase != previous.phase
        return Step(
            follow=dataclasses.replace(follow, status=wanted, written_at=clock),
            write=wanted,
            finished=wanted.phase in batchstatus.TERMINAL,
            event=Event(
                type="Normal",
                reason=wanted.phase or "Progress",
                message=f"batch is {wanted.phase}: {wanted.progress}",
            )
            if changed
            else None,
            recheck_in=_deadline_in(status=wanted, now=now),
        )
    held_back = batchstatus.should_write(
        written=previous, wanted=wanted, seconds_since_write=math.inf
    )
    waits = [
        batchstatus.MIN_SECONDS_BETWEEN_WRITES - since if held_back else None,
        _deadline_in(status=wanted, now=now),
    ]
    return Step(follow=follow, recheck_in=min((w for w in waits if w is not None), default=None))


def _deadline_in(*, status: imagebatch.ImageBatchStatus, now: datetime.datetime) -> float | None:
    """Seconds until an unfinished batch's SLA deadline has passed, if it is ahead."""
    if status.deadline is None or status.completed_at is not None or status.deadline < now:
        return None
    return (status.deadline - now).total_seconds() + DEADLINE_MARGIN_SECONDS


def lost_data_event(*, region: str, count: int) -> Event:
    """The Warning posted once the missing items are enqueued again."""
    return Event(
        type="Warning",
        reason="QueueDataLost",
        message=(
            f"{count} unfinished item(s) were missing from region {region}'s queue (its "
            "Redis lost its data); enqueued again, finished items are kept"
        ),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reach:
    """Whether a region's Redis answers, as its reporter has seen."""

    unreachable_since: float | None = None
    """Monotonic time of the first failure of the current outage; None while it answers."""


def reach_failed(reach: Reach, *, clock: float) -> Reach:
    """The region did not answer at `clock`."""
    return reach if reach.unreachable_since is not None else Reach(unreachable_since=clock)


def fail_over_due(reach: Reach, *, clock: float, after_seconds: float) -> bool:
    """Whether the region has been away long enough for its batches to move."""
    return reach.unreachable_since is not None and clock - reach.unreachable_since >= after_seconds


def failed_over(
    *,
    batch: imagebatch.ImageBatch,
    status: imagebatch.ImageBatchStatus,
    to: str,
    moved: int,
    now: datetime.datetime,
) -> tuple[imagebatch.ImageBatchStatus, Event]:
    """The status (recorded before enqueueing there) and Warning of a batch moving its
    `moved` unfinished items from its region to `to`."""
    message = f"region {status.region} unreachable; {moved} unfinished item(s) moved to {to}"
    enqueued = list(status.enqueued_regions or [status.region or to])
    moved_status = status.model_copy(
        update={
            "region": to,
            "enqueued_regions": enqueued if to in enqueued else [*enqueued, to],
            "conditions": conditions.set_condition(
                status.conditions or [],
                type="FailedOver",
                status="True",
                reason="RegionUnreachable",
                message=message,
                generation=batch.metadata.generation,
                now=now,
            ),
        }
    )
    return moved_status, Event(type="Warning", reason="FailedOver", message=message)


def leftover_regions(
    *, status: imagebatch.ImageBatchStatus | None, retired: Collection[str]
) -> list[str]:
    """Regions a batch was enqueued in before it failed over, and that may still hold its
    unfinished items (not yet `retired`: cancelled there and its keys released)."""
    if status is None or status.pool is None:
        return []
    return [
        name
        for name in status.enqueued_regions or ()
        if name != status.region and name not in retired
    ]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Leftovers:
    """What a region a batch failed over from holds of it, once it answers again."""

    queued: tuple[str, ...]
    """Ids of items still waiting there: cancelled, the current region makes them."""
    running: tuple[str, ...]
    """Ids of items being made there: left to finish, then counted."""
    finished: dict[str, model.ItemProgress]
    """Items it finished while the operator could not see it, by id."""


def leftovers(progress: model.BatchProgress) -> Leftovers:
    """Sort what the region left holds (its progress of the batch)."""
    return Leftovers(
        queued=tuple(item.id for item in progress.items if item.state == "Queued"),
        running=tuple(item.id for item in progress.items if item.state == "Running"),
        finished={item.id: item for item in progress.items if item.state == "Succeeded"},
    )


def finished_ids(status: imagebatch.ImageBatchStatus) -> set[str]:
    """Ids of the items that the status shows finished."""
    return {item.id for item in status.items or () if item.state in batchstatus.FINISHED_ITEMS}


def leftovers_cancelled_event(*, region: str, count: int, current: str | None) -> Event:
    """The Event once a region the batch left answers again and its items there are gone."""
    return Event(
        type="Normal",
        reason="LeftoversCancelled",
        message=(
            f"region {region} answers again: {count} unfinished item(s) of this batch "
            f"cancelled there (the batch runs in {current or 'no region now'})"
        ),
    )
