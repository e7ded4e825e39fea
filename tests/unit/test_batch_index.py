"""The index of followed batches: fed by watch events and dispatch, asked by the region
reporters which batches and pools are active where, and telling them what to look at."""

from __future__ import annotations

from typing import Any

from imagegen.api import imagebatch
from imagegen.controller import batchindex, reporting
from imagegen.queue import model
from tests import builders


def dispatched(name: str = "b1", *, region: str = "us-east", **status: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "phase": "Queued", "region": region, "pool": "dedicated-acme",
        "enqueued_regions": [region],
    } | status  # fmt: skip
    return builders.make_batch(name).uid(f"uid-{name}").items(3).status(**fields).obj()


def watched() -> tuple[batchindex.Index, list[tuple[str, str]]]:
    index = batchindex.Index()
    looks: list[tuple[str, str]] = []
    index.listen(lambda region, uid: looks.append((region, uid)))
    return index, looks


def test_a_queued_batch_seen_on_the_watch_is_followed_in_its_region_and_looked_at() -> None:
    index, looks = watched()

    index.observe(body=dispatched())

    assert [e.uid for e in index.followed_in("us-east")] == ["uid-b1"]
    assert index.followed_in("eu-west") == []
    assert index.pools_in("us-east") == {"dedicated-acme"}
    assert looks == [("us-east", "uid-b1")]


def test_batches_that_are_finished_pending_or_unrecorded_are_not_kept() -> None:
    index, looks = watched()

    index.observe(body=dispatched("done", phase="Succeeded"))
    index.observe(body=dispatched("waiting", phase="Pending"))
    index.observe(
        body=builders.make_batch("old")
        .uid("uid-old")
        .status(phase="Queued", region="us-east")
        .obj()
    )

    assert len(index) == 0
    assert looks == []


def test_further_events_update_the_spec_and_a_cancel_asks_for_a_look() -> None:
    index, looks = watched()
    index.observe(body=dispatched())
    looks.clear()

    index.observe(body=dispatched())
    assert looks == []
    cancelled = dispatched()
    cancelled["spec"]["cancel"] = True
    index.observe(body=cancelled)

    entry = index.get("uid-b1")
    assert entry is not None
    assert entry.cancel
    assert looks == [("us-east", "uid-b1")]


def test_the_reporters_own_status_is_kept_over_what_the_watch_brings_later() -> None:
    index, _ = watched()
    index.observe(body=dispatched())
    entry = index.get("uid-b1")
    assert entry is not None
    running = entry.status.model_copy(update={"phase": "Running", "progress": "1/3"})
    index.update("uid-b1", follow=reporting.Follow(status=running, written_at=5.0))

    index.observe(body=dispatched())  # an event of the older write arriving late

    assert entry.status.phase == "Running"


def test_a_batch_being_deleted_is_left_alone_and_a_deleted_one_is_gone() -> None:
    index, _ = watched()
    index.observe(body=dispatched())
    deleting = dispatched()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"

    index.observe(body=deleting)
    assert index.followed_in("us-east") == []
    index.forget("uid-b1")
    assert index.get("uid-b1") is None
    index.observe(body=deleting)  # a late event of the deletion adds nothing back
    assert index.get("uid-b1") is None


def test_dispatch_hands_a_batch_over_with_its_write_time_unless_the_watch_was_first() -> None:
    index, looks = watched()
    batch = builders.make_batch("b1").uid("uid-b1").items(3).model()
    status = imagebatch.ImageBatchStatus.model_validate(dispatched()["status"])

    index.dispatched(batch=batch, status=status, clock=42.0)
    index.dispatched(batch=batch, status=status, clock=43.0)

    entry = index.get("uid-b1")
    assert entry is not None
    assert entry.follow.written_at == 42.0
    assert looks == [("us-east", "uid-b1")]


def test_a_failover_hands_the_batch_to_the_new_region_and_the_old_one_tidies_up() -> None:
    index, looks = watched()
    index.observe(body=dispatched())
    entry = index.get("uid-b1")
    assert entry is not None
    moved = entry.status.model_copy(
        update={"region": "eu-west", "enqueued_regions": ["us-east", "eu-west"]}
    )
    looks.clear()

    index.update("uid-b1", follow=reporting.Follow(status=moved, written_at=1.0))

    assert sorted(looks) == [("eu-west", "uid-b1"), ("us-east", "uid-b1")]
    assert [e.uid for e in index.followed_in("eu-west")] == ["uid-b1"]
    assert [e.uid for e in index.leftovers_in("us-east")] == ["uid-b1"]
    index.retire("uid-b1", region="us-east")
    assert index.leftovers_in("us-east") == []


def test_items_found_finished_in_a_region_left_are_told_once_to_the_regions_concerned() -> None:
    index, looks = watched()
    index.observe(body=dispatched(region="eu-west", enqueued_regions=["us-east", "eu-west"]))
    done = model.ItemProgress(
        id="i0", state="Succeeded", attempts=1, result={"uri": "s3://us-east/i0.png"}, error=None
    )
    looks.clear()

    index.found_finished("uid-b1", items={"i0": done})
    index.found_finished("uid-b1", items={"i0": done})
    index.cancelled_in_current("uid-b1", item_ids=["i0"])

    entry = index.get("uid-b1")
    assert entry is not None
    assert entry.finished_elsewhere == {"i0": done}
    assert entry.cancelled_here == {"i0"}
    assert sorted(looks) == [("eu-west", "uid-b1"), ("us-east", "uid-b1")]


def test_a_finished_batch_stays_only_while_a_region_it_left_holds_leftovers() -> None:
    index, _ = watched()
    index.observe(body=dispatched("a"))
    index.observe(body=dispatched("b", region="eu-west", enqueued_regions=["us-east", "eu-west"]))

    index.finished("uid-a")
    index.finished("uid-b")

    assert index.get("uid-a") is None
    assert index.followed_in("eu-west") == []
    assert [e.uid for e in index.leftovers_in("us-east")] == ["uid-b"]
    index.retire("uid-b", region="us-east")
    assert index.get("uid-b") is None


def test_a_finished_batch_that_failed_over_is_picked_up_after_a_restart_for_its_leftovers() -> None:
    index, looks = watched()

    index.observe(
        body=dispatched(
            "b", phase="Succeeded", region="eu-west", enqueued_regions=["us-east", "eu-west"]
        )
    )

    assert index.followed_in("eu-west") == []
    assert [e.uid for e in index.leftovers_in("us-east")] == ["uid-b"]
    assert looks == [("us-east", "uid-b")]


def test_a_batch_whose_tenant_is_gone_is_to_be_cancelled_and_its_region_told() -> None:
    index, looks = watched()
    index.observe(body=dispatched())
    looks.clear()

    index.orphan("uid-b1")
    index.orphan("uid-b1")

    entry = index.get("uid-b1")
    assert entry is not None
    assert entry.cancel
    assert looks == [("us-east", "uid-b1")]
    assert [e.uid for e in index.of_tenant("acme")] == ["uid-b1"]
