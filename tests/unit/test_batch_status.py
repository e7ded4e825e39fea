"""A batch's status from its queue progress, and the rationing of status writes."""

import datetime

from imagegen.api import imagebatch
from imagegen.controller import batchstatus
from imagegen.queue import model

T0 = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)


def progress(
    total: int = 100, queued: int = 0, running: int = 0, succeeded: int = 0,
    failed: int = 0, cancelled: int = 0, cancel: bool = False,
) -> model.BatchProgress:  # fmt: skip
    return model.BatchProgress(
        uid="u1", total=total, queued=queued, running=running, succeeded=succeeded,
        failed=failed, cancelled=cancelled, cancel_requested=cancel, items=(),
    )  # fmt: skip


def admitted(deadline_seconds: int = 300) -> imagebatch.ImageBatchStatus:
    return imagebatch.ImageBatchStatus(
        phase="Queued", admitted_at=T0, deadline=T0 + datetime.timedelta(seconds=deadline_seconds)
    )


def test_phases_follow_the_items() -> None:
    assert batchstatus.phase_of(progress(queued=100)) == "Queued"
    assert batchstatus.phase_of(progress(queued=90, running=10)) == "Running"
    assert batchstatus.phase_of(progress(succeeded=100)) == "Succeeded"
    assert batchstatus.phase_of(progress(succeeded=97, failed=3)) == "PartiallySucceeded"
    assert batchstatus.phase_of(progress(failed=100)) == "Failed"
    assert batchstatus.phase_of(progress(queued=50, cancel=True)) == "Cancelled"


def test_progress_reads_finished_of_total() -> None:
    status = batchstatus.from_progress(
        previous=admitted(), progress=progress(queued=60, running=3, succeeded=36, failed=1),
        generation=1, now=T0,
    )  # fmt: skip
    assert status.progress == "37/100"
    assert status.counts == imagebatch.Counts(
        total=100, queued=60, running=3, succeeded=36, failed=1
    )


def test_completion_in_time_meets_the_sla() -> None:
    done = batchstatus.from_progress(
        previous=admitted(), progress=progress(succeeded=100), generation=1,
        now=T0 + datetime.timedelta(seconds=200),
    )  # fmt: skip
    assert done.sla_met is True
    assert [(c.type, c.status) for c in done.conditions or ()] == [("SLAMet", "True")]


def test_a_deadline_passed_unfinished_is_recorded_and_work_goes_on() -> None:
    late = batchstatus.from_progress(
        previous=admitted(deadline_seconds=10), progress=progress(queued=50, succeeded=50),
        generation=1, now=T0 + datetime.timedelta(seconds=11),
    )  # fmt: skip
    assert late.phase == "Running"
    assert [(c.type, c.status, c.reason) for c in late.conditions or ()] == [
        ("SLAMet", "False", "SLAExceeded")
    ]


def test_a_100_item_batch_costs_at_most_20_status_writes() -> None:
    written = admitted()
    writes = 0
    now = T0
    for finished in range(101):
        now += datetime.timedelta(seconds=1.1)
        wanted = batchstatus.from_progress(
            previous=written,
            progress=progress(queued=100 - finished - (finished < 100), running=finished < 100,
                              succeeded=finished),
            generation=1, now=now,
        )  # fmt: skip
        if batchstatus.should_write(written=written, wanted=wanted, seconds_since_write=1.1):
            written, writes = wanted, writes + 1
    assert written.phase == "Succeeded"
    assert writes <= 20


def test_no_write_within_a_second_unless_the_phase_changes() -> None:
    running = batchstatus.from_progress(
        previous=admitted(), progress=progress(queued=50, running=10, succeeded=40), generation=1,
        now=T0,
    )  # fmt: skip
    later = batchstatus.from_progress(
        previous=running, progress=progress(queued=20, running=10, succeeded=70), generation=1,
        now=T0,
    )  # fmt: skip
    assert not batchstatus.should_write(written=running, wanted=later, seconds_since_write=0.5)
    done = batchstatus.from_progress(
        previous=running, progress=progress(succeeded=100), generation=1, now=T0
    )
    assert batchstatus.should_write(written=running, wanted=done, seconds_since_write=0.1)


def test_a_batch_that_has_run_never_reads_queued_again() -> None:
    running = admitted().model_copy(update={"phase": "Running"})
    # Its region lost the items and they are all queued again; none had finished.
    again = batchstatus.from_progress(
        previous=running, progress=progress(queued=100), generation=1, now=T0
    )
    assert again.phase == "Running"
    assert batchstatus.phase_of(progress(queued=100)) == "Queued"
