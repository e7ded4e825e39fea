"""An ImageBatch's status from its queue progress, and when to write it. Pure: no I/O.

Writes are rationed so a 100-item batch costs a handful of status writes, not a hundred:
a phase change is always written; progress only when a tenth of the items more have
finished, and never twice within a second.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import math
from collections.abc import Callable, Mapping, Sequence

from imagegen.api import imagebatch, meta
from imagegen.controller import conditions
from imagegen.queue import model

TERMINAL: frozenset[str] = frozenset(
    {"Succeeded", "PartiallySucceeded", "Failed", "Cancelled", "Rejected"}
)
ACTIVE: frozenset[str] = frozenset({"Pending", "Queued", "Running"})
FINISHED_ITEMS: frozenset[str] = frozenset({"Succeeded", "Failed"})
"""Item states that are final and carry a result or an error."""
MIN_SECONDS_BETWEEN_WRITES = 1.0
PROGRESS_STEPS = 10
"""Progress is written when another 1/PROGRESS_STEPS of the items has finished."""


def phase_of(progress: model.BatchProgress) -> imagebatch.Phase:
    """The batch's phase as its items stand."""
    if progress.cancel_requested:
        return "Cancelled"
    if not progress.finished:
        started = progress.running or progress.succeeded or progress.failed
        return "Running" if started else "Queued"
    if progress.failed == 0:
        return "Succeeded"
    return "PartiallySucceeded" if progress.succeeded else "Failed"


def from_progress(
    *,
    previous: imagebatch.ImageBatchStatus,
    progress: model.BatchProgress,
    generation: int | None,
    now: datetime.datetime,
) -> imagebatch.ImageBatchStatus:
    """The status the batch should have, given what its items are doing. A batch that
    has run never reads Queued again (its items were enqueued anew after a data loss)."""
    phase = phase_of(progress)
    if phase == "Queued" and previous.phase == "Running":
        phase = "Running"
    finished = progress.succeeded + progress.failed + progress.cancelled
    started_at = previous.started_at or (now if phase != "Queued" else None)
    completed_at = previous.completed_at or (now if phase in TERMINAL else None)
    current = _sla_conditions(
        previous=previous, phase=phase, generation=generation, now=now, completed_at=completed_at
    )
    return replace(
        previous,
        phase=phase,
        message=_message(phase=phase, progress=progress),
        counts=imagebatch.Counts(
            total=progress.total,
            queued=progress.queued,
            running=progress.running,
            succeeded=progress.succeeded,
            failed=progress.failed,
        ),
        progress=f"{finished}/{progress.total}",
        items=[_item(item, now=now, previous=previous) for item in progress.items],
        started_at=started_at,
        completed_at=completed_at,
        sla_met=(
            None
            if completed_at is None or previous.deadline is None
            else completed_at <= previous.deadline
        ),
        conditions=current,
        observed_generation=generation,
    )


def with_finished_elsewhere(
    *, progress: model.BatchProgress, finished: Mapping[str, model.ItemProgress]
) -> model.BatchProgress:
    """The progress with the items that a region the batch failed over from finished (it
    answered again) shown finished, with that region's result, unless this region finished
    them as well: each item counts once, and whatever this region still had of it is
    cancelled (reporter). An item this region never got is added, so it is not taken for
    one its queue lost."""
    return _overlaid(
        progress=progress,
        over=finished,
        replaces=lambda item: item.state not in FINISHED_ITEMS,
        missing_first=False,
    )


def with_carried_over(
    *, progress: model.BatchProgress, previous: imagebatch.ImageBatchStatus
) -> model.BatchProgress:
    """The progress with every item the status has seen finish kept finished, so status
    never goes backwards: after a failover the new region holds only the items that were
    unfinished, after a region's Redis lost its data it holds only those enqueued again,
    and after it came back from an older copy it may show a finished item unfinished.
    An item finished in the status keeps the result it was published with (and is
    counted once, even when two regions finished it); the others are as the region says."""
    kept = {
        item.id: _as_progress(item) for item in previous.items or () if item.state in FINISHED_ITEMS
    }
    return _overlaid(progress=progress, over=kept, replaces=lambda _: True, missing_first=True)


def _overlaid(
    *,
    progress: model.BatchProgress,
    over: Mapping[str, model.ItemProgress],
    replaces: Callable[[model.ItemProgress], bool],
    missing_first: bool,
) -> model.BatchProgress:
    """The progress with its items that `over` names, and `replaces` says may go, taken
    from `over`, and those of `over` it lacks added (first or last); counts follow."""
    if not over:
        return progress
    counts = collections.Counter[str]()
    items = []
    for item in progress.items:
        instead = over.get(item.id)
        if instead is None or not replaces(item):
            items.append(item)
            continue
        counts[item.state] -= 1
        counts[instead.state] += 1
        items.append(instead)
    present = {item.id for item in progress.items}
    missing = [item for item_id, item in over.items() if item_id not in present]
    counts.update(item.state for item in missing)
    return dataclasses.replace(
        progress,
        total=progress.total + len(missing),
        queued=progress.queued + counts["Queued"],
        running=progress.running + counts["Running"],
        succeeded=progress.succeeded + counts["Succeeded"],
        failed=progress.failed + counts["Failed"],
        cancelled=progress.cancelled + counts["Cancelled"],
        items=(*missing, *items) if missing_first else (*items, *missing),
    )


def _as_progress(item: imagebatch.ItemStatus) -> model.ItemProgress:
    return model.ItemProgress(
        id=item.id,
        state=item.state,
        attempts=item.attempts or 0,
        result={"uri": item.uri, "provider": item.provider} if item.uri else None,
        error=item.error,
    )


def should_write(
    *,
    written: imagebatch.ImageBatchStatus,
    wanted: imagebatch.ImageBatchStatus,
    seconds_since_write: float,
) -> bool:
    """Whether the wanted status is worth a write now, given what was last written."""
    if wanted.phase != written.phase:
        return True
    if wanted == written or seconds_since_write < MIN_SECONDS_BETWEEN_WRITES:
        return False
    total = wanted.counts.total if wanted.counts else 0
    step = max(1, math.ceil(total / PROGRESS_STEPS))
    return _finished(wanted) - _finished(written) >= step or _conditions_changed(written, wanted)


def replace(status: imagebatch.ImageBatchStatus, **changes: object) -> imagebatch.ImageBatchStatus:
    """A copy of the status with some fields replaced (pydantic's model_copy, typed)."""
    return status.model_copy(update=changes)


def _finished(status: imagebatch.ImageBatchStatus) -> int:
    counts = status.counts or imagebatch.Counts()
    return counts.succeeded + counts.failed


def _conditions_changed(
    written: imagebatch.ImageBatchStatus, wanted: imagebatch.ImageBatchStatus
) -> bool:
    def statuses(s: imagebatch.ImageBatchStatus) -> dict[str, str]:
        return {c.type: c.status for c in s.conditions or ()}

    return statuses(written) != statuses(wanted)


def _message(*, phase: imagebatch.Phase, progress: model.BatchProgress) -> str:
    if phase == "Cancelled":
        return f"cancelled; {progress.succeeded} item(s) had finished and are kept"
    if phase == "PartiallySucceeded":
        return f"{progress.failed} of {progress.total} item(s) failed; see status.items"
    if phase == "Failed":
        return "every item failed; see status.items"
    return ""


def _item(
    item: model.ItemProgress, *, now: datetime.datetime, previous: imagebatch.ImageBatchStatus
) -> imagebatch.ItemStatus:
    result = item.result or {}
    before = next((i for i in previous.items or () if i.id == item.id), None)
    finished_at = None
    if item.state in ("Succeeded", "Failed"):
        finished_at = before.finished_at if before and before.finished_at else now
    return imagebatch.ItemStatus(
        id=item.id,
        state=item.state,
        provider=result.get("provider"),
        uri=result.get("uri"),
        error=item.error if item.state == "Failed" else None,
        attempts=item.attempts,
        finished_at=finished_at,
    )


def _sla_conditions(
    *,
    previous: imagebatch.ImageBatchStatus,
    phase: imagebatch.Phase,
    generation: int | None,
    now: datetime.datetime,
    completed_at: datetime.datetime | None,
) -> list[meta.Condition]:
    """SLAMet while on time, False with SLAExceeded once the deadline passes unfinished
    (work carries on: nothing is dropped at the deadline, the breach is only recorded)."""
    current: Sequence[meta.Condition] = previous.conditions or []
    deadline = previous.deadline
    if deadline is None or phase == "Cancelled":
        return list(current)
    moment = completed_at or now
    if moment > deadline:
        return conditions.set_condition(
            current, type="SLAMet", status="False", reason="SLAExceeded",
            message=f"deadline {deadline.isoformat()} passed before the batch completed",
            generation=generation, now=now,
        )  # fmt: skip
    if completed_at is not None:
        return conditions.set_condition(
            current, type="SLAMet", status="True", reason="CompletedInTime",
            message=f"completed before the deadline {deadline.isoformat()}",
            generation=generation, now=now,
        )  # fmt: skip
    return conditions.set_condition(
        current, type="SLAMet", status="Unknown", reason="InProgress",
        message=f"deadline {deadline.isoformat()}", generation=generation, now=now,
    )  # fmt: skip
