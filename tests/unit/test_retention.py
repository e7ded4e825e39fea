"""Retention: a finished batch's TTL (its own, else its Tenant's, else a week) and when it
is due; the StoreAvailable condition; where a deleted batch may have left data."""

import asyncio
import datetime
from collections.abc import AsyncIterator

import httpx2
import pytest

from imagegen.api import tenant
from imagegen.controller import cleanup, retention, storecondition
from imagegen.queue import storehealth
from tests import builders

DONE = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
NOW = DONE + datetime.timedelta(hours=1)


def finished(**spec: object) -> builders.BatchBuilder:
    batch = builders.make_batch().status(phase="Succeeded", completed_at=DONE.isoformat())
    for field, value in spec.items():
        batch = batch.set(f"spec.{field}", value)
    return batch


def test_the_batchs_own_ttl_wins_over_its_tenants() -> None:
    owner = builders.make_tenant().set("spec.retention", {"batchTTLSeconds": 60}).model()
    batch = finished(ttlSecondsAfterFinished=10).model()
    assert retention.ttl_seconds(batch=batch, owner=owner) == 10
    assert retention.expires_at(batch=batch, owner=owner) == DONE + datetime.timedelta(seconds=10)


def test_without_its_own_ttl_a_batch_keeps_its_tenants_or_a_week() -> None:
    owner = builders.make_tenant().set("spec.retention", {"batchTTLSeconds": 60}).model()
    batch = finished().model()
    assert retention.ttl_seconds(batch=batch, owner=owner) == 60
    assert retention.ttl_seconds(batch=batch, owner=builders.make_tenant().model()) == 7 * 86_400
    assert retention.ttl_seconds(batch=batch, owner=None) == tenant.DEFAULT_BATCH_TTL_SECONDS


@pytest.mark.parametrize("phase", ["Pending", "Queued", "Running"])
def test_an_unfinished_batch_is_never_due(phase: str) -> None:
    batch = finished(ttlSecondsAfterFinished=0).status(phase=phase).model()
    assert retention.expires_at(batch=batch, owner=None) is None


def test_a_ttl_beyond_a_year_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="ttlSecondsAfterFinished"):
        finished(ttlSecondsAfterFinished=400 * 86_400).model()


def test_store_trouble_sets_the_condition_false_naming_region_store_and_reason() -> None:
    status = finished().model().status
    assert status is not None
    trouble = storehealth.Trouble(
        store="s3://images at http://s3.local", reason="AccessDenied", detail="403 AccessDenied"
    )
    failing = storecondition.apply(
        status=status, trouble=trouble, region="us-east", generation=1, now=NOW
    )
    [condition] = [c for c in failing.conditions or [] if c.type == storecondition.TYPE]
    assert (condition.status, condition.reason) == ("False", "AccessDenied")
    assert "region us-east" in condition.message
    assert "s3://images at http://s3.local" in condition.message
    recovered = storecondition.apply(
        status=failing, trouble=None, region="us-east", generation=1, now=NOW
    )
    [condition] = [c for c in recovered.conditions or [] if c.type == storecondition.TYPE]
    assert condition.status == "True"


def test_a_store_that_never_failed_adds_no_condition() -> None:
    status = finished().model().status
    assert status is not None
    kept = storecondition.apply(
        status=status, trouble=None, region="us-east", generation=1, now=NOW
    )
    assert kept == status


def test_a_pending_cleanup_entry_round_trips() -> None:
    leftover = cleanup.Leftover(
        region="us-east", tenant="acme", batch_uid="5f0c-uid", pools=("dedicated-acme",)
    )
    parsed = cleanup.parse_entry(entry=leftover.entry, raw='{"pools": ["dedicated-acme"]}')
    assert parsed == leftover
    assert cleanup.parse_entry(entry="garbage", raw="{}") is None


def test_a_batch_whose_tenant_is_gone_is_cleaned_in_both_pools_it_could_have_used() -> None:
    assert cleanup.pools_of(tenant="acme", pool=None) == ("shared", "dedicated-acme")
    assert cleanup.pools_of(tenant="acme", pool="shared") == ("shared",)


CONFIGURED = ["us-east", "eu-west", "asia-pacific"]


def test_a_deleted_batch_is_cleaned_where_its_status_says_it_was_enqueued_in_its_pool() -> None:
    status = (
        builders.make_batch()
        .status(phase="Succeeded", region="eu-west", pool="shared",
                enqueued_regions=["us-east", "eu-west"])
        .model().status
    )  # fmt: skip
    assert status is not None
    leftovers = cleanup.leftovers_of(
        configured=CONFIGURED, tenant="acme", batch_uid="u1", status=status
    )
    assert [(each.region, each.pools) for each in leftovers] == [
        ("us-east", ("shared",)), ("eu-west", ("shared",)),
    ]  # fmt: skip


def test_a_batch_an_older_operator_dispatched_is_cleaned_everywhere_in_both_pools() -> None:
    status = builders.make_batch().status(phase="Succeeded", region="eu-west").model().status
    assert status is not None
    leftovers = cleanup.leftovers_of(
        configured=CONFIGURED, tenant="acme", batch_uid="u1", status=status
    )
    assert [each.region for each in leftovers] == CONFIGURED
    assert {each.pools for each in leftovers} == {("shared", "dedicated-acme")}


def test_a_batch_never_dispatched_has_nothing_to_clean() -> None:
    status = builders.make_batch().status(phase="Rejected").model().status
    assert status is not None
    assert cleanup.recorded_regions(configured=CONFIGURED, status=status) == []


class ApiserverTimingOutOnce:
    """A management client whose first list times out, as a busy apiserver's does."""

    def __init__(self) -> None:
        self.lists = 0

    def list(self, *_: object, **__: object) -> AsyncIterator[object]:
        self.lists += 1
        if self.lists == 1:
            raise httpx2.ReadTimeout("the apiserver did not answer in time")
        if self.lists == 3:
            raise asyncio.CancelledError  # the test has seen a pass after the timeout
        return nothing()


async def nothing() -> AsyncIterator[object]:
    for found in ():
        yield found


async def test_a_retention_pass_that_times_out_is_retried_and_the_loop_lives_on() -> None:
    management = ApiserverTimingOutOnce()
    with pytest.raises(asyncio.CancelledError):
        await retention.run_forever(
            management=management,  # type: ignore[arg-type]
            interval_seconds=0,
            clock=lambda: NOW,
        )
    # The timed-out pass, then a whole one (Tenants and batches listed), then the third.
    assert management.lists == 3
