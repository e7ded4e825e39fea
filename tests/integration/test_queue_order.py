"""The queue against a real redis-server: what is served first, fairness, idempotent
enqueue, and the keyspace. Replies are left as bytes here (the client's default)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis import crc

from imagegen import redisconn
from imagegen.api import imagebatch, tenant
from imagegen.queue import core, keys, model
from tests.integration import conftest


@pytest.fixture
async def client(any_redis_url: str) -> AsyncIterator[redisconn.Client]:
    """A bytes client of an empty Redis: one node, then the 12-node Redis Cluster."""
    client = await conftest.empty_redis(any_redis_url, decode_responses=False)
    yield client
    await client.aclose()


def make_queue(client: redisconn.Client, pool: str = keys.SHARED) -> core.Queue:
    return core.Queue(redis=client, pool=pool, clock=lambda: 1_700_000_000.0)


def batch(
    uid: str,
    tenant_name: str,
    *,
    tier: tenant.Tier = "standard",
    priority: imagebatch.Priority = "normal",
    weight: int = 1,
) -> model.BatchRef:
    return model.BatchRef(uid=uid, tenant=tenant_name, tier=tier, priority=priority, weight=weight)


def items(*ids: str) -> list[model.ItemSpec]:
    return [model.ItemSpec(id=item_id, payload={"prompt": f"draw {item_id}"}) for item_id in ids]


def numbered(prefix: str, count: int) -> list[model.ItemSpec]:
    return items(*(f"{prefix}{n}" for n in range(count)))


async def drain(queue: core.Queue) -> list[tuple[str, str]]:
    """Lease and complete everything, returning (batch uid, item id) in serving order."""
    served = []
    while (lease := await queue.lease(worker_id="w")) is not None:
        served.append((lease.batch_uid, lease.item_id))
        assert await queue.complete(lease=lease, result={"uri": f"file:///{lease.item_id}"})
    return served


async def test_enqueue_twice_enqueues_once(client: redisconn.Client) -> None:
    queue = make_queue(client)
    ref = batch("b1", "acme")

    assert await queue.enqueue_batch(batch=ref, items=items("a", "b", "c")) == 3
    assert await queue.enqueue_batch(batch=ref, items=items("a", "b", "c")) == 0
    assert await queue.enqueue_batch(batch=ref, items=items("c", "d")) == 1

    assert await drain(queue) == [("b1", "a"), ("b1", "b"), ("b1", "c"), ("b1", "d")]
    assert (await queue.progress(batch_uid="b1")).total == 4


async def test_enqueue_after_completion_does_not_run_an_item_again(
    client: redisconn.Client,
) -> None:
    queue = make_queue(client)
    ref = batch("b1", "acme")
    await queue.enqueue_batch(batch=ref, items=items("a"))
    await drain(queue)

    assert await queue.enqueue_batch(batch=ref, items=items("a")) == 0
    assert await queue.lease(worker_id="w") is None


async def test_priority_tier_is_served_before_a_standard_backlog(client: redisconn.Client) -> None:
    queue = make_queue(client)
    await queue.enqueue_batch(batch=batch("s1", "slow", priority="high"), items=numbered("s", 20))
    await queue.enqueue_batch(batch=batch("s2", "other"), items=numbered("o", 20))
    await queue.enqueue_batch(
        batch=batch("p1", "premium", tier="priority", priority="low"), items=numbered("p", 5)
    )

    served = await drain(queue)

    assert served[:5] == [("p1", f"p{n}") for n in range(5)]
    assert sorted(served[5:]) == sorted(
        [("s1", f"s{n}") for n in range(20)] + [("s2", f"o{n}") for n in range(20)]
    )


async def test_priority_tier_arriving_mid_backlog_goes_next(client: redisconn.Client) -> None:
    queue = make_queue(client)
    await queue.enqueue_batch(batch=batch("s1", "slow"), items=numbered("s", 10))
    first = await drain_some(queue, 3)
    await queue.enqueue_batch(batch=batch("p1", "premium", tier="priority"), items=numbered("p", 2))

    rest = await drain(queue)

    assert first == [("s1", "s0"), ("s1", "s1"), ("s1", "s2")]
    assert rest[:2] == [("p1", "p0"), ("p1", "p1")]
    assert rest[2:] == [("s1", f"s{n}") for n in range(3, 10)]


async def drain_some(queue: core.Queue, count: int) -> list[tuple[str, str]]:
    served = []
    for _ in range(count):
        lease = await queue.lease(worker_id="w")
        assert lease is not None
        served.append((lease.batch_uid, lease.item_id))
        await queue.complete(lease=lease, result={})
    return served


async def test_high_before_normal_before_low_within_a_tenant(client: redisconn.Client) -> None:
    queue = make_queue(client)
    await queue.enqueue_batch(batch=batch("low", "acme", priority="low"), items=items("l1", "l2"))
    await queue.enqueue_batch(batch=batch("n1", "acme"), items=items("n1", "n2"))
    await queue.enqueue_batch(batch=batch("hi", "acme", priority="high"), items=items("h1", "h2"))
    await queue.enqueue_batch(batch=batch("n2", "acme"), items=items("n3"))

    assert await drain(queue) == [
        ("hi", "h1"),
        ("hi", "h2"),
        ("n1", "n1"),
        ("n1", "n2"),
        ("n2", "n3"),
        ("low", "l1"),
        ("low", "l2"),
    ]


@pytest.mark.parametrize(("weight_a", "weight_b"), [(1, 1), (2, 1), (3, 2)])
async def test_shared_pool_serves_tenants_by_weight_in_every_window_of_100(
    client: redisconn.Client, weight_a: int, weight_b: int
) -> None:
    queue = make_queue(client)
    for n in range(10):
        for name, weight in (("a", weight_a), ("b", weight_b)):
            await queue.enqueue_batch(
                batch=batch(f"{name}{n}", name, weight=weight), items=numbered(name, 100)
            )

    served = [uid[0] for uid, _ in await drain(queue)]

    assert len(served) == 2000
    # Only while both tenants have a backlog can the shares follow the weights.
    both_busy = min(max(i for i, t in enumerate(served) if t == name) for name in "ab") + 1
    for start in range(both_busy - 100 + 1):
        window = served[start : start + 100]
        for name, weight in (("a", weight_a), ("b", weight_b)):
            expected = 100 * weight / (weight_a + weight_b)
            assert abs(window.count(name) - expected) <= 0.1 * expected, (start, name)


async def test_tenant_arriving_behind_a_backlog_is_served_within_one_round(
    client: redisconn.Client,
) -> None:
    queue = make_queue(client)
    await queue.enqueue_batch(batch=batch("big", "big", weight=3), items=numbered("x", 100))
    await drain_some(queue, 10)
    await queue.enqueue_batch(batch=batch("small", "small"), items=items("s1"))

    served = await drain_some(queue, 4)

    assert ("small", "s1") in served


async def test_tenants_of_a_dedicated_pool_are_apart_from_the_shared_pool(
    client: redisconn.Client,
) -> None:
    shared = make_queue(client)
    dedicated = make_queue(client, pool=keys.dedicated(tenant="acme"))
    await dedicated.enqueue_batch(batch=batch("d1", "acme"), items=items("a"))

    assert await shared.lease(worker_id="w") is None
    assert await drain(dedicated) == [("d1", "a")]


async def test_every_key_of_a_pool_hashes_to_one_slot(client: redisconn.Client) -> None:
    pool = keys.dedicated(tenant="acme")
    queue = make_queue(client, pool=pool)
    await queue.enqueue_batch(batch=batch("b1", "acme", tier="priority"), items=items("a", "b"))
    await queue.enqueue_batch(batch=batch("b2", "acme"), items=items("c", "d"))
    lease = await queue.lease(worker_id="w")
    assert lease is not None
    # Leave some of everything behind: a lease, a queued lane, a finished item.
    await drain_some(queue, 1)

    names = [key async for key in client.scan_iter()]
    names.append(queue.channel.encode())

    assert len(names) > 8
    assert all(b"{" + pool.encode() + b"}" in name for name in names)
    assert {crc.key_slot(name) for name in names} == {crc.key_slot(pool.encode())}
