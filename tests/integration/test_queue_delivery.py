"""The queue against a real redis-server: leases, attempts, completion, failure,
cancellation, progress, depth and events. Replies are decoded to str here, so both client
settings are covered (test_queue_order keeps bytes)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from imagegen import redisconn
from imagegen.queue import core, keys, model, storehealth

"""The operator's tests share this server on DB 0; the queue's tests flush their own."""
LEASE_SECONDS = 30.0
BATCH = model.BatchRef(uid="b1", tenant="acme", tier="standard", priority="normal")


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(any_redis: redisconn.Client) -> redisconn.Client:
    """Every test here runs on one node and on the 12-node Redis Cluster."""
    return any_redis


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(client: redisconn.Client, clock: Clock) -> core.Queue:
    """A shared-pool queue: 30 s leases, 3 attempts, the test's clock."""
    return core.Queue(
        redis=client, pool=keys.SHARED, lease_seconds=LEASE_SECONDS, max_attempts=3, clock=clock
    )


async def enqueue(queue: core.Queue, *ids: str) -> None:
    specs = [model.ItemSpec(id=item_id, payload={"prompt": item_id, "seed": 7}) for item_id in ids]
    assert await queue.enqueue_batch(batch=BATCH, items=specs) == len(ids)


async def lease(queue: core.Queue, worker_id: str = "w1") -> model.Lease:
    leased = await queue.lease(worker_id=worker_id)
    assert leased is not None
    return leased


async def item(queue: core.Queue, item_id: str) -> model.ItemProgress:
    progress = await queue.progress(batch_uid=BATCH.uid)
    return next(entry for entry in progress.items if entry.id == item_id)


async def test_lease_carries_the_payload_and_an_expiry(queue: core.Queue, clock: Clock) -> None:
    await enqueue(queue, "a")

    leased = await lease(queue)

    assert (leased.batch_uid, leased.item_id, leased.tenant) == ("b1", "a", "acme")
    assert leased.payload == {"prompt": "a", "seed": 7}
    assert leased.attempt == 1
    assert leased.expires_at == clock.now + LEASE_SECONDS
    assert (await item(queue, "a")).state == "Running"


async def test_expired_lease_returns_item_to_queue(queue: core.Queue, clock: Clock) -> None:
    await enqueue(queue, "a", "b")
    first = await lease(queue)
    clock.now += LEASE_SECONDS

    assert await queue.requeue_expired() == 1
    state = await item(queue, "a")
    assert (state.state, state.attempts, state.error) == ("Queued", 1, "lease expired")
    again = await lease(queue, "w2")
    assert (again.item_id, again.attempt) == (first.item_id, 2)


async def test_item_fails_with_lease_expired_after_max_attempts(
    queue: core.Queue, clock: Clock
) -> None:
    await enqueue(queue, "a")
    for attempt in (1, 2, 3):
        leased = await lease(queue)
        assert leased.attempt == attempt
        clock.now += LEASE_SECONDS + 1
        assert await queue.requeue_expired() == 1

    state = await item(queue, "a")
    assert (state.state, state.attempts, state.error) == ("Failed", 3, "lease expired")
    assert await queue.lease(worker_id="w1") is None


async def test_next_lease_takes_back_expired_leases_without_a_sweeper(
    queue: core.Queue, clock: Clock
) -> None:
    await enqueue(queue, "a")
    await lease(queue, "killed")
    clock.now += LEASE_SECONDS

    again = await lease(queue, "w2")

    assert (again.item_id, again.attempt, again.worker_id) == ("a", 2, "w2")


async def test_renewed_lease_does_not_expire(queue: core.Queue, clock: Clock) -> None:
    await enqueue(queue, "a")
    leased = await lease(queue)
    clock.now += LEASE_SECONDS - 1
    assert await queue.renew(lease=leased)
    clock.now += LEASE_SECONDS - 1

    assert await queue.requeue_expired() == 0
    assert await queue.complete(lease=leased, result={"uri": "file:///a.png"})


async def test_renew_of_a_lease_taken_back_fails(queue: core.Queue, clock: Clock) -> None:
    await enqueue(queue, "a")
    stale = await lease(queue)
    clock.now += LEASE_SECONDS
    await queue.requeue_expired()
    assert not await queue.renew(lease=stale)

    current = await lease(queue, "w2")

    assert not await queue.renew(lease=stale)
    assert await queue.renew(lease=current)


async def test_complete_is_idempotent_and_keeps_the_first_result(queue: core.Queue) -> None:
    await enqueue(queue, "a")
    leased = await lease(queue)

    assert await queue.complete(lease=leased, result={"uri": "file:///first.png"})
    assert not await queue.complete(lease=leased, result={"uri": "file:///second.png"})

    progress = await queue.progress(batch_uid=BATCH.uid)
    assert (progress.succeeded, progress.running, progress.total) == (1, 0, 1)
    assert progress.items[0].result == {"uri": "file:///first.png"}


async def test_redelivered_item_is_acknowledged_when_its_result_exists(
    queue: core.Queue, clock: Clock
) -> None:
    await enqueue(queue, "a")
    slow = await lease(queue, "slow")
    clock.now += LEASE_SECONDS
    redelivered = await lease(queue, "w2")

    # The slow worker finishes first: its result counts, the redelivery is acknowledged.
    assert await queue.complete(lease=slow, result={"uri": "file:///a.png"})
    assert not await queue.renew(lease=redelivered)
    assert not await queue.complete(lease=redelivered, result={"uri": "file:///a.png"})
    state = await item(queue, "a")
    assert (state.state, state.attempts, state.result) == ("Succeeded", 2, {"uri": "file:///a.png"})


async def test_retryable_failure_requeues_and_keeps_the_error(queue: core.Queue) -> None:
    await enqueue(queue, "a")

    assert await queue.fail(lease=await lease(queue), error="timeout", retryable=True) == "requeued"

    state = await item(queue, "a")
    assert (state.state, state.attempts, state.error) == ("Queued", 1, "timeout")
    assert (await lease(queue)).attempt == 2


async def test_retryable_failure_fails_once_attempts_are_used(queue: core.Queue) -> None:
    await enqueue(queue, "a")
    outcomes = [
        await queue.fail(lease=await lease(queue), error=f"timeout {n}", retryable=True)
        for n in (1, 2, 3)
    ]

    assert outcomes == ["requeued", "requeued", "failed"]
    state = await item(queue, "a")
    assert (state.state, state.attempts, state.error) == ("Failed", 3, "timeout 3")


async def test_final_failure_fails_at_once_with_its_error(queue: core.Queue) -> None:
    await enqueue(queue, "a")
    leased = await lease(queue)

    assert await queue.fail(lease=leased, error="prompt rejected", retryable=False) == "failed"
    assert await queue.fail(lease=leased, error="again", retryable=False) == "dropped"
    assert not await queue.complete(lease=leased, result={"uri": "late"})

    state = await item(queue, "a")
    assert (state.state, state.error, state.result) == ("Failed", "prompt rejected", None)


async def test_released_item_goes_back_in_its_place_without_using_an_attempt(
    queue: core.Queue,
) -> None:
    await enqueue(queue, "a", "b")
    await queue.fail(lease=await lease(queue), error="timeout", retryable=True)
    first = await lease(queue)
    assert (first.item_id, first.attempt) == ("a", 2)

    assert await queue.release(lease=first)

    state = await item(queue, "a")
    assert (state.state, state.attempts, state.error) == ("Queued", 1, "timeout")
    progress = await queue.progress(batch_uid=BATCH.uid)
    assert (progress.queued, progress.running) == (2, 0)
    again = await lease(queue, "w2")
    assert (again.item_id, again.attempt) == ("a", 2)


async def test_release_of_a_lease_no_longer_held_changes_nothing(
    queue: core.Queue, clock: Clock
) -> None:
    await enqueue(queue, "a")
    stale = await lease(queue)
    clock.now += LEASE_SECONDS
    current = await lease(queue, "w2")

    assert not await queue.release(lease=stale)
    state = await item(queue, "a")
    assert (state.state, state.attempts) == ("Running", 2)
    assert await queue.complete(lease=current, result={"uri": "file:///a.png"})
    assert not await queue.release(lease=current)
    assert (await item(queue, "a")).state == "Succeeded"


async def test_cancel_removes_queued_items_and_drops_in_flight_completions(
    queue: core.Queue,
) -> None:
    await enqueue(queue, "a", "b", "c", "d")
    done = await lease(queue)
    await queue.complete(lease=done, result={"uri": "file:///a.png"})
    in_flight = await lease(queue)

    assert await queue.cancel_batch(batch_uid=BATCH.uid) == 3

    assert await queue.lease(worker_id="w2") is None
    assert not await queue.renew(lease=in_flight)
    assert not await queue.complete(lease=in_flight, result={"uri": "file:///b.png"})
    assert await queue.fail(lease=in_flight, error="x", retryable=True) == "dropped"
    assert await queue.cancel_batch(batch_uid=BATCH.uid) == 0
    spec = [model.ItemSpec(id="e", payload={})]
    assert await queue.enqueue_batch(batch=BATCH, items=spec) == 0
    progress = await queue.progress(batch_uid=BATCH.uid)
    assert progress.cancel_requested
    assert [(entry.id, entry.state) for entry in progress.items] == [
        ("a", "Succeeded"),
        ("b", "Cancelled"),
        ("c", "Cancelled"),
        ("d", "Cancelled"),
    ]
    assert progress.items[0].result == {"uri": "file:///a.png"}


async def test_cancelling_some_items_leaves_the_batch_and_its_other_items_going(
    queue: core.Queue,
) -> None:
    await enqueue(queue, "a", "b", "c", "d")
    done = await lease(queue)
    await queue.complete(lease=done, result={"uri": "file:///a.png"})
    running = await lease(queue)  # b

    # Queued only: the running item keeps its lease; finished and unknown ones are left.
    assert await queue.cancel_items(batch_uid=BATCH.uid, item_ids=["a", "b", "c", "x"],
                                    running_too=False) == 1  # fmt: skip
    assert await queue.renew(lease=running)
    assert (await item(queue, "c")).state == "Cancelled"
    # Running too: its worker's renew and completion are refused.
    assert await queue.cancel_items(batch_uid=BATCH.uid, item_ids=["b"], running_too=True) == 1
    assert not await queue.renew(lease=running)
    assert not await queue.complete(lease=running, result={"uri": "file:///b.png"})

    assert (await lease(queue)).item_id == "d"
    assert await queue.lease(worker_id="w2") is None
    progress = await queue.progress(batch_uid=BATCH.uid)
    assert not progress.cancel_requested
    assert (progress.succeeded, progress.running, progress.cancelled) == (1, 1, 2)
    spec = [model.ItemSpec(id="e", payload={})]
    assert await queue.enqueue_batch(batch=BATCH, items=spec) == 1


async def test_cancelled_in_flight_item_is_not_taken_back_when_its_lease_expires(
    queue: core.Queue, clock: Clock
) -> None:
    await enqueue(queue, "a")
    await lease(queue)
    await queue.cancel_batch(batch_uid=BATCH.uid)
    clock.now += LEASE_SECONDS

    assert await queue.requeue_expired() == 0
    assert (await item(queue, "a")).state == "Cancelled"


async def test_progress_counts_are_exact(queue: core.Queue, clock: Clock) -> None:
    await enqueue(queue, *(f"i{n}" for n in range(10)))
    leases = [await lease(queue) for _ in range(6)]
    for leased in leases[:3]:
        await queue.complete(lease=leased, result={"uri": leased.item_id})
    await queue.fail(lease=leases[3], error="nsfw", retryable=False)
    await queue.fail(lease=leases[4], error="timeout", retryable=True)

    progress = await queue.progress(batch_uid=BATCH.uid)

    counts = (progress.total, progress.queued, progress.running)
    assert counts == (10, 5, 1)
    assert (progress.succeeded, progress.failed, progress.cancelled) == (3, 1, 0)
    states = [entry.state for entry in progress.items]
    assert [states.count(s) for s in ("Queued", "Running", "Succeeded", "Failed")] == [5, 1, 3, 1]
    assert [entry.id for entry in progress.items] == [f"i{n}" for n in range(10)]
    assert not progress.finished


async def test_progress_of_an_unknown_batch_is_empty(queue: core.Queue) -> None:
    progress = await queue.progress(batch_uid="nope")

    assert (progress.total, progress.items, progress.finished) == (0, (), False)


async def test_depth_counts_queued_items_with_the_oldest_age(
    queue: core.Queue, clock: Clock
) -> None:
    await enqueue(queue, "a", "b", "c")
    clock.now += 5
    urgent = model.BatchRef(uid="b2", tenant="vip", tier="priority", priority="high")
    await queue.enqueue_batch(batch=urgent, items=[model.ItemSpec(id="x", payload={})])
    clock.now += 2
    await lease(queue)

    assert await queue.depth() == {
        ("acme", "standard", "normal"): model.LaneDepth(queued=3, oldest_age_seconds=7.0),
    }


async def test_item_state_changes_are_published_on_the_pool_channel_naming_the_batch(
    client: redisconn.Client, queue: core.Queue
) -> None:
    subscriber = redisconn.ShardedSubscriber(client)
    await subscriber.subscribe(queue.channel)

    await enqueue(queue, "a")
    await queue.complete(lease=await lease(queue), result={"uri": "file:///a.png"})

    messages = []
    async with asyncio.timeout(10):
        while len(messages) < 3:
            if message := await subscriber.get_message(wait_seconds=1.0):
                messages.append(json.loads(message["data"]))
    await subscriber.aclose()
    assert messages == [
        {"batch": BATCH.uid, "state": "Queued", "count": 1},
        {"batch": BATCH.uid, "item": "a", "state": "Running", "attempts": 1},
        {"batch": BATCH.uid, "item": "a", "state": "Succeeded", "attempts": 1},
    ]
    assert {core.batch_of_event(json.dumps(m)) for m in messages} == {BATCH.uid}


async def test_store_trouble_and_its_clearing_are_announced_on_the_pool_channel(
    client: redisconn.Client, queue: core.Queue
) -> None:
    subscriber = redisconn.ShardedSubscriber(client)
    await subscriber.subscribe(queue.channel)
    trouble = storehealth.Trouble(store="s3://images", reason="Unreachable", detail="timeout")

    await storehealth.report(redis=client, pool=keys.SHARED, trouble=trouble)
    await storehealth.clear(redis=client, pool=keys.SHARED)

    messages = []
    async with asyncio.timeout(10):
        while len(messages) < 2:
            if message := await subscriber.get_message(wait_seconds=1.0):
                messages.append(message["data"])
    await subscriber.aclose()
    # They name no batch: the reporter looks at every batch of the pool.
    assert [core.batch_of_event(data) for data in messages] == [None, None]


async def test_lease_waits_for_an_item_enqueued_meanwhile(queue: core.Queue) -> None:
    async def enqueue_later() -> None:
        await asyncio.sleep(0.1)
        await enqueue(queue, "a")

    later = asyncio.create_task(enqueue_later())
    leased = await queue.lease(worker_id="w1", wait_seconds=5.0)
    await later

    assert leased is not None
    assert leased.item_id == "a"


async def test_lease_without_work_gives_up_after_the_wait(queue: core.Queue) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    assert await queue.lease(worker_id="w1", wait_seconds=0.3) is None
    assert 0.3 <= loop.time() - started < 1.0


async def test_forget_deletes_every_key_of_the_batch(
    client: redisconn.Client, queue: core.Queue
) -> None:
    await enqueue(queue, "a", "b")
    leased = await lease(queue)

    assert await queue.forget_batch(batch_uid=BATCH.uid) == 2

    assert not await queue.renew(lease=leased)
    assert not await queue.complete(lease=leased, result={})
    assert await queue.lease(worker_id="w1") is None
    # SCAN, not KEYS: a cluster client scans every primary.
    left = sorted([key async for key in client.scan_iter(match="*")])
    assert left == [queue.keyspace.seq, queue.keyspace.weight]


async def test_in_flight_counts_the_items_leased_and_not_yet_finished(queue: core.Queue) -> None:
    await enqueue(queue, "a", "b", "c")
    first = await lease(queue)
    await lease(queue)
    assert await queue.in_flight() == 2
    await queue.complete(lease=first, result={"uri": "file:///a.png"})
    assert await queue.in_flight() == 1


async def test_a_redelivery_says_why_the_previous_lease_ended(
    queue: core.Queue, clock: Clock
) -> None:
    await enqueue(queue, "a", "b")
    first = await lease(queue)
    assert first.previous_error is None
    clock.now += LEASE_SECONDS
    expired_again = await lease(queue)
    assert (expired_again.item_id, expired_again.previous_error) == (first.item_id, model.EXPIRED)
    assert await queue.fail(lease=expired_again, error="provider busy", retryable=True) == (
        "requeued"
    )
    retried = await lease(queue)
    assert (retried.item_id, retried.attempt, retried.previous_error) == (
        first.item_id, 3, "provider busy",
    )  # fmt: skip


async def test_without_a_clock_leases_and_ages_follow_redis_time_not_the_hosts(
    client: redisconn.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers and the operator compare lease expiries across hosts: in production the
    scripts read Redis TIME. A host 30 s fast changes no expiry and steals no lease."""
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 30)
    queue = core.Queue(redis=client, pool=keys.SHARED, lease_seconds=LEASE_SECONDS)
    await enqueue(queue, "a", "b", "c")
    held = await lease(queue)
    seconds, micros = await client.time()
    server_now = seconds + micros / 1e6
    # Within the few seconds a loaded machine may take between the two calls.
    assert server_now + LEASE_SECONDS - 5 <= held.expires_at <= server_now + LEASE_SECONDS
    # A second worker with the same fast clock takes the next item, not the held one.
    assert (await lease(queue, worker_id="w2")).item_id == "b"
    assert await queue.requeue_expired() == 0
    assert await queue.renew(lease=held)
    [waiting] = (await queue.depth()).values()
    assert waiting.queued == 1
    assert 0 <= waiting.oldest_age_seconds < 5
