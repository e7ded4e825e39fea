"""The webhook outbox's Redis steps, one node and the 12-node Redis Cluster: an event is
appended once, read by one dispatcher, claimed from a dead one, retried when due and
settled for good."""

from __future__ import annotations

from imagegen import redisconn
from imagegen.gateway.webhooks import events, outbox


def event(step: int = 0) -> events.Event:
    return events.Event(
        type="batch.progress",
        step=step,
        batch_uid="uid-1",
        tenant="acme",
        url="https://hooks.example/in",
        msg_id=f"msg_uid-1_{step}",
        body=b'{"type":"batch.progress"}',
    )


async def test_an_event_is_appended_once_and_read_by_one_dispatcher(
    any_redis: redisconn.Client,
) -> None:
    await outbox.ensure_group(any_redis)
    await outbox.ensure_group(any_redis)  # a second dispatcher starting: no error
    assert await outbox.append(any_redis, event(1))
    assert not await outbox.append(any_redis, event(1))
    assert await outbox.append(any_redis, event(2))

    first = await outbox.read_new(any_redis, consumer="d1", count=10, block_ms=100)
    assert [entry.msg_id for entry in first] == ["msg_uid-1_1", "msg_uid-1_2"]
    assert await outbox.read_new(any_redis, consumer="d2", count=10, block_ms=100) == []
    assert await outbox.depth(any_redis) == 2


async def test_a_retry_comes_due_and_a_final_settle_removes_the_entry(
    any_redis: redisconn.Client,
) -> None:
    await outbox.ensure_group(any_redis)
    await outbox.append(any_redis, event())
    [entry] = await outbox.read_new(any_redis, consumer="d1", count=10, block_ms=100)
    retrying = outbox.Outcome(state="retrying", attempts=1, status=503, due=100.0)
    await outbox.settle(any_redis, entry=entry, outcome=retrying, now=50.0)
    assert await outbox.attempts_made(any_redis, entry.entry_id) == 1
    assert await outbox.take_due(any_redis, now=99.0, lease_seconds=30, limit=10) == []
    [due] = await outbox.take_due(any_redis, now=100.0, lease_seconds=30, limit=10)
    assert due.msg_id == entry.msg_id
    # Leased to this dispatcher until 130: no other takes it meanwhile.
    assert await outbox.take_due(any_redis, now=101.0, lease_seconds=30, limit=10) == []

    delivered = outbox.Outcome(state="delivered", attempts=2, status=200)
    await outbox.settle(any_redis, entry=due, outcome=delivered, now=101.0)
    assert await outbox.depth(any_redis) == 0
    record = await outbox.record(any_redis, entry.msg_id)
    assert (record["state"], record["attempts"], record["status"]) == ("delivered", "2", "200")


async def test_an_entry_a_dead_dispatcher_left_pending_is_claimed(
    any_redis: redisconn.Client,
) -> None:
    await outbox.ensure_group(any_redis)
    await outbox.append(any_redis, event())
    [read] = await outbox.read_new(any_redis, consumer="dead", count=10, block_ms=100)
    claimed = await outbox.claim_abandoned(any_redis, consumer="alive", min_idle_ms=0, count=10)
    assert [entry.entry_id for entry in claimed] == [read.entry_id]
