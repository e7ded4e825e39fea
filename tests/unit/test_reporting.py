"""The region reporter's decisions, without I/O: what to write and when, what to enqueue
again after a data loss, when to fail over, and which regions hold a batch's leftovers."""

from __future__ import annotations

import datetime

from imagegen.api import imagebatch
from imagegen.controller import batchstatus, reporting
from imagegen.queue import model, storehealth

T0 = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)
IDS = [f"i{n}" for n in range(10)]


def batch(*, cancel: bool = False) -> imagebatch.ImageBatch:
    return imagebatch.ImageBatch.model_validate(
        {
            "metadata": {"name": "b", "namespace": "tenant-acme", "uid": "u1", "generation": 1},
            "spec": {
                "tenant": "acme",
                "items": [{"id": item_id, "prompt": "a lighthouse"} for item_id in IDS],
                "cancel": cancel,
            },
        }
    )


def queued(**changes: object) -> imagebatch.ImageBatchStatus:
    """As dispatch writes it: Queued in us-east, pool recorded, deadline 300 s on."""
    status = imagebatch.ImageBatchStatus(
        phase="Queued",
        region="us-east",
        pool="dedicated-acme",
        enqueued_regions=["us-east"],
        admitted_at=T0,
        deadline=T0 + datetime.timedelta(seconds=300),
        counts=imagebatch.Counts(total=10, queued=10),
        progress="0/10",
    )
    return status.model_copy(update=changes)


def item(item_id: str, state: imagebatch.ItemState, *, store: str) -> model.ItemProgress:
    finished = state in batchstatus.FINISHED_ITEMS
    return model.ItemProgress(
        id=item_id,
        state=state,
        attempts=1 if state != "Queued" else 0,
        result={"uri": f"{store}/{item_id}.png", "provider": "local"} if finished else None,
        error=None,
    )


def progress(
    *states: tuple[str, imagebatch.ItemState], cancel: bool = False, store: str = "file:///img"
) -> model.BatchProgress:
    items = tuple(item(item_id, state, store=store) for item_id, state in states)
    count = {
        s: sum(i.state == s for i in items)
        for s in ("Queued", "Running", "Succeeded", "Failed", "Cancelled")
    }
    return model.BatchProgress(
        uid="u1", total=len(items), queued=count["Queued"], running=count["Running"],
        succeeded=count["Succeeded"], failed=count["Failed"], cancelled=count["Cancelled"],
        cancel_requested=cancel, items=items,
    )  # fmt: skip


def states(
    succeeded: int, running: int = 0, ids: list[str] = IDS
) -> list[tuple[str, imagebatch.ItemState]]:
    """The first `succeeded` items done, the next `running` running, the rest queued."""
    return [
        (
            item_id,
            "Succeeded" if n < succeeded else "Running" if n < succeeded + running else "Queued",
        )
        for n, item_id in enumerate(ids)
    ]


def step(
    follow: reporting.Follow,
    reading: model.BatchProgress,
    *,
    at: float = 100.0,
    now: datetime.datetime = T0,
    cancel: bool = False,
    trouble: storehealth.Trouble | None = None,
) -> reporting.Step:
    return reporting.step(
        batch=batch(cancel=cancel), follow=follow, cancel=cancel, progress=reading,
        trouble=trouble, now=now, clock=at,
    )  # fmt: skip


def test_the_first_item_running_is_written_at_once_with_a_phase_event() -> None:
    done = step(reporting.Follow(status=queued(), written_at=99.9), progress(*states(0, 1)))

    assert done.write is not None
    assert done.write.phase == "Running"
    assert done.follow.status == done.write
    assert done.follow.written_at == 100.0
    assert done.event == reporting.Event(
        type="Normal", reason="Running", message="batch is Running: 0/10"
    )
    assert not done.finished


def test_progress_inside_the_second_after_a_write_waits_and_asks_for_a_look_when_it_ends() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(0, 4))).follow

    held = step(running, progress(*states(2, 4)), at=100.4)

    assert held.write is None
    assert held.follow == running
    assert held.recheck_in is not None
    assert abs(held.recheck_in - 0.6) < 1e-9
    later = step(running, progress(*states(2, 4)), at=101.0)
    assert later.write is not None
    assert later.write.progress == "2/10"


def test_progress_below_a_tenth_is_not_written_and_nothing_is_asked_but_the_deadline() -> None:
    hundred = imagebatch.ImageBatch.model_validate(
        batch().model_dump(by_alias=True) | {"spec": {"tenant": "acme", "items": [
            {"id": f"j{n}", "prompt": "p"} for n in range(100)
        ]}}
    )  # fmt: skip
    ids = [f"j{n}" for n in range(100)]
    follow = reporting.Follow(status=queued(counts=imagebatch.Counts(total=100, queued=100)))
    running = reporting.step(
        batch=hundred, follow=follow, cancel=False, progress=progress(*states(0, 4, ids)),
        trouble=None, now=T0, clock=100.0,
    ).follow  # fmt: skip
    quiet = reporting.step(
        batch=hundred, follow=running, cancel=False, progress=progress(*states(5, 4, ids)),
        trouble=None, now=T0 + datetime.timedelta(seconds=10), clock=110.0,
    )  # fmt: skip

    assert quiet.write is None
    assert quiet.recheck_in == 290.0 + reporting.DEADLINE_MARGIN_SECONDS


def test_the_last_item_finishing_is_written_and_ends_the_batch() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(9, 1))).follow

    done = step(running, progress(*states(10)), at=100.2, now=T0 + datetime.timedelta(seconds=30))

    assert done.write is not None
    assert (done.write.phase, done.write.progress, done.write.sla_met) == (
        "Succeeded",
        "10/10",
        True,
    )
    assert done.finished
    assert done.event is not None
    assert done.event.reason == "Succeeded"
    assert done.recheck_in is None


def test_the_deadline_passing_unfinished_is_written_when_looked_at_after_it() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(1, 1))).follow

    late = step(
        running, progress(*states(1, 1)), at=500.0, now=T0 + datetime.timedelta(seconds=301)
    )

    assert late.write is not None
    sla = [c for c in late.write.conditions or () if c.type == "SLAMet"]
    assert (sla[0].status, sla[0].reason) == ("False", "SLAExceeded")
    assert late.write.phase == "Running"


def test_a_region_whose_redis_lost_the_batch_gets_every_unfinished_item_again() -> None:
    follow = reporting.Follow(status=queued())

    lost = step(follow, progress())

    assert lost.requeue == tuple(IDS)
    assert lost.write is None
    assert lost.follow == follow


def test_after_a_data_loss_mid_batch_only_the_unfinished_items_go_back() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(4, 2))).follow

    lost = step(running, progress(), at=200.0)

    assert lost.requeue == tuple(IDS[4:])


def test_status_never_goes_backwards_once_the_lost_items_are_queued_again() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(4, 2))).follow
    assert running.status.progress == "4/10"

    again = step(running, progress(*states(0, 0, IDS[4:])), at=200.0)
    assert again.requeue == ()
    assert again.write is None  # nothing new finished: nothing worth a write
    further = step(again.follow, progress(*states(1, 0, IDS[4:])), at=201.0)

    assert further.write is not None
    assert further.write.phase == "Running"
    assert further.write.progress == "5/10"
    assert further.write.counts == imagebatch.Counts(total=10, queued=5, succeeded=5)
    done = {i.id for i in further.write.items or () if i.state == "Succeeded"}
    assert done == {*IDS[:4], "i4"}


def test_an_item_a_restored_redis_shows_unfinished_stays_finished_with_its_result() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(4, 2))).follow
    older = progress(*states(2, 4))

    kept = reporting.step(
        batch=batch(), follow=running, cancel=False, progress=older, trouble=None,
        now=T0, clock=200.0,
    )  # fmt: skip

    status = kept.write or kept.follow.status
    assert status.counts is not None
    assert (status.counts.succeeded, status.counts.running, status.counts.queued) == (4, 2, 4)
    assert next(i for i in status.items or () if i.id == "i3").uri == "file:///img/i3.png"


def test_a_cancelled_batch_is_not_enqueued_again_and_ends_cancelled() -> None:
    follow = reporting.Follow(status=queued())
    assert reporting.wants_cancel(cancel=True, follow=follow)
    assert not reporting.wants_cancel(
        cancel=True, follow=reporting.Follow(status=queued(), cancel_sent=True)
    )

    done = step(follow, progress(cancel=True), cancel=True)

    assert done.requeue == ()
    assert done.write is not None
    assert done.write.phase == "Cancelled"
    assert done.finished


def test_store_trouble_is_written_as_a_condition_of_the_batchs_region() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(0, 4))).follow
    trouble = storehealth.Trouble(store="s3://images", reason="Unreachable", detail="timeout")

    troubled = step(running, progress(*states(0, 4)), at=102.0, trouble=trouble)

    assert troubled.write is not None
    [condition] = [c for c in troubled.write.conditions or () if c.type == "StoreAvailable"]
    assert condition.status == "False"
    assert "region us-east" in condition.message


def test_a_region_fails_over_after_being_away_long_enough_counted_from_the_first_failure() -> None:
    away = reporting.reach_failed(reporting.Reach(), clock=10.0)
    still = reporting.reach_failed(away, clock=12.0)

    assert still.unreachable_since == 10.0
    assert not reporting.fail_over_due(still, clock=14.9, after_seconds=5)
    assert reporting.fail_over_due(still, clock=15.0, after_seconds=5)
    assert not reporting.fail_over_due(reporting.Reach(), clock=99.0, after_seconds=5)


def test_a_failover_records_the_new_region_once_and_says_how_many_items_moved() -> None:
    moved, event = reporting.failed_over(
        batch=batch(), status=queued(), to="eu-west", moved=10, now=T0
    )

    assert (moved.region, moved.enqueued_regions, moved.pool) == (
        "eu-west", ["us-east", "eu-west"], "dedicated-acme",
    )  # fmt: skip
    [condition] = [c for c in moved.conditions or () if c.type == "FailedOver"]
    assert "10 unfinished item(s) moved to eu-west" in condition.message
    assert (event.type, event.reason) == ("Warning", "FailedOver")
    back, _ = reporting.failed_over(batch=batch(), status=moved, to="us-east", moved=3, now=T0)
    assert back.enqueued_regions == ["us-east", "eu-west"]


def test_the_region_a_batch_left_holds_leftovers_until_retired_and_the_current_one_never() -> None:
    moved, _ = reporting.failed_over(batch=batch(), status=queued(), to="eu-west", moved=10, now=T0)

    assert reporting.leftover_regions(status=moved, retired=()) == ["us-east"]
    assert reporting.leftover_regions(status=moved, retired={"us-east"}) == []
    assert reporting.leftover_regions(status=queued(), retired=()) == []
    back, _ = reporting.failed_over(batch=batch(), status=moved, to="us-east", moved=3, now=T0)
    assert reporting.leftover_regions(status=back, retired=()) == ["eu-west"]


def test_after_a_failover_the_new_region_holds_only_the_unfinished_items_and_that_is_no_loss() -> (
    None
):
    running = step(reporting.Follow(status=queued()), progress(*states(4, 2))).follow
    moved, _ = reporting.failed_over(
        batch=batch(), status=running.status, to="eu-west", moved=6, now=T0
    )
    follow = reporting.Follow(status=moved, written_at=150.0)

    there = step(follow, progress(*states(1, 0, IDS[4:])), at=152.0)

    assert there.requeue == ()
    assert there.write is not None
    assert there.write.progress == "5/10"
    assert there.write.counts == imagebatch.Counts(total=10, queued=5, succeeded=5)


def test_an_item_finished_in_both_regions_is_counted_once_with_its_first_result() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(4, 2))).follow
    moved, _ = reporting.failed_over(
        batch=batch(), status=running.status, to="eu-west", moved=6, now=T0
    )
    # i0..i3 finished in us-east; say eu-west ran every item again, into its own store.
    again = progress(*states(10), store="s3://eu-west")
    both = step(reporting.Follow(status=moved, written_at=150.0), again, at=152.0)

    assert both.write is not None
    assert both.write.counts == imagebatch.Counts(total=10, succeeded=10)
    items = {i.id: i.uri for i in both.write.items or ()}
    assert len(both.write.items or ()) == len(items) == 10
    assert items["i3"] == "file:///img/i3.png"
    assert items["i4"] == "s3://eu-west/i4.png"


def test_items_the_old_region_finished_unseen_count_once_and_end_the_batch() -> None:
    running = step(reporting.Follow(status=queued()), progress(*states(2))).follow
    moved, _ = reporting.failed_over(
        batch=batch(), status=running.status, to="eu-west", moved=8, now=T0
    )
    # Cut off, us-east went on with i2..i5; eu-west, last first, made i9..i6, and its
    # copies of i2..i5 were cancelled when us-east answered again.
    here = progress(
        *[(i, "Cancelled") for i in IDS[2:6]], *[(i, "Succeeded") for i in IDS[6:]],
        store="s3://eu-west",
    )  # fmt: skip
    there = {i: item(i, "Succeeded", store="s3://us-east") for i in IDS[2:6]}

    merged = batchstatus.with_finished_elsewhere(progress=here, finished=there)
    done = step(reporting.Follow(status=moved, written_at=150.0), merged, at=152.0)

    assert done.requeue == ()
    assert done.finished
    assert done.write is not None
    assert (done.write.phase, done.write.progress) == ("Succeeded", "10/10")
    assert done.write.counts == imagebatch.Counts(total=10, succeeded=10)
    uris = {i.id: i.uri for i in done.write.items or ()}
    assert (uris["i0"], uris["i2"], uris["i9"]) == (
        "file:///img/i0.png", "s3://us-east/i2.png", "s3://eu-west/i9.png",
    )  # fmt: skip


def test_an_item_finished_in_both_regions_keeps_the_current_regions_result() -> None:
    here = progress(("i0", "Succeeded"), ("i1", "Running"), store="s3://eu-west")
    there = {i: item(i, "Succeeded", store="s3://us-east") for i in ("i0", "i1", "i2")}

    merged = batchstatus.with_finished_elsewhere(progress=here, finished=there)

    assert (merged.total, merged.succeeded, merged.running) == (3, 3, 0)
    assert [(i.id, (i.result or {})["uri"]) for i in merged.items] == [
        ("i0", "s3://eu-west/i0.png"), ("i1", "s3://us-east/i1.png"),
        ("i2", "s3://us-east/i2.png"),
    ]  # fmt: skip


def test_a_region_answering_again_has_its_leftovers_sorted_by_what_becomes_of_them() -> None:
    left = reporting.leftovers(
        progress(("i0", "Succeeded"), ("i1", "Running"), ("i2", "Queued"), ("i3", "Failed"))
    )

    assert (left.queued, left.running, list(left.finished)) == (("i2",), ("i1",), ["i0"])


def test_only_queued_and_running_batches_with_a_recorded_pool_are_followed() -> None:
    assert reporting.followable(queued())
    assert reporting.followable(queued(phase="Running"))
    assert not reporting.followable(queued(phase="Pending"))
    assert not reporting.followable(queued(phase="Succeeded"))
    assert not reporting.followable(queued(pool=None))
    assert not reporting.followable(None)
