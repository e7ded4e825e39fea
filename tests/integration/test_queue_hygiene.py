"""Queue hygiene: once a batch is finished and its status written, its queue keys leave
the region's Redis; after 50 batches the Redis holds no more keys, and no more memory,
than before them. Once through `controller.cleanup.release_queue` itself, once through
the real operator running batches to the end with real workers."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib

import pytest
import redis as redis_py
import redis.asyncio as aioredis

from imagegen.controller import cleanup
from imagegen.localcluster import redis
from imagegen.queue import core, keys, model, payload
from tests.integration import batchworld, waiting, workerproc
from tests.integration.tenantworld import World

pytestmark = pytest.mark.integration

POOL = keys.dedicated(tenant="acme")
WORK = payload.WorkItem(
    prompt="a lighthouse at dawn " * 20, width=64, height=48, providers=("local",)
)
BATCHES = 50
ITEMS = 20
MEMORY_SLACK_BYTES = 64 * 1024
"""Noise of redis-server's used_memory between two samples of the same keyspace: what a
command allocates on its first run, and the work of the clients in flight at that moment
(the operator's test saw 9 to 33 KiB with its workers polling). What 50 batches leave
behind in keys that stay (a field or an entry of about 1.3 KiB each) is above it; a key
they leave is caught by the key count."""


async def run_batch(queue: core.Queue, uid: str) -> None:
    """Enqueue, lease and complete every item, as workers do."""
    batch = model.BatchRef(uid=uid, tenant="acme", tier="standard", priority="normal")
    specs = [model.ItemSpec(id=f"i{n:02d}", payload=WORK.to_json()) for n in range(ITEMS)]
    await queue.enqueue_batch(batch=batch, items=specs)
    while (lease := await queue.lease(worker_id="w1")) is not None:
        result = {"uri": f"s3://images/acme/{uid}/{lease.item_id}.png", "bytes": 1234}
        assert await queue.complete(lease=lease, result=result)
    assert (await queue.progress(batch_uid=uid)).finished


async def release(client: aioredis.Redis, uid: str) -> None:
    await cleanup.release_queue(redis=client, region="us-east", pool=POOL, batch_uid=uid)


async def used_memory(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def test_fifty_finished_batches_leave_keys_and_memory_at_baseline(
    scratch_redis: aioredis.Redis,
) -> None:
    queue = core.Queue(redis=scratch_redis, pool=POOL)
    # One batch first: the pool's own keys (its sequence, its rings) exist from then on.
    await run_batch(queue, "warmup")
    await cleanup.release_queue(
        redis=scratch_redis, region="us-east", pool=POOL, batch_uid="warmup"
    )
    baseline_keys = await scratch_redis.dbsize()
    baseline_memory = await used_memory(scratch_redis)

    for n in range(BATCHES):
        uid = f"batch-{n:03d}"
        await run_batch(queue, uid)
        assert await scratch_redis.exists(queue.keyspace.batch(uid=uid))
        await release(scratch_redis, uid)

    assert await scratch_redis.dbsize() == baseline_keys
    assert await used_memory(scratch_redis) <= baseline_memory + MEMORY_SLACK_BYTES
    assert [key async for key in scratch_redis.scan_iter(match="*batch-0*")] == []


REGION = "us-east"
ITEMS_PER_OPERATOR_BATCH = 4
RELEASE_SECONDS = 30.0
"""Bound on a finished batch's keys leaving Redis once its status says Succeeded."""


@dataclasses.dataclass(frozen=True)
class Footprint:
    """What a Redis holds: the keys of one pool, and its memory apart from the clients'
    buffers. The pool's keys, not all: a key an earlier test left may expire meanwhile."""

    keys: int
    used_memory: int
    clients_memory: int

    @property
    def data_memory(self) -> int:
        """used_memory less what the connected clients' buffers take: that moves with how
        many connections the operator's and the workers' pools have open, not with data."""
        return self.used_memory - self.clients_memory


def footprint(client: redis_py.Redis, pool: str) -> Footprint:
    memory = client.info("memory")
    return Footprint(
        keys=len(list(client.scan_iter(match=f"ig:q:{{{pool}}}:*"))),
        used_memory=int(memory["used_memory"]),
        clients_memory=int(memory["mem_clients_normal"]),
    )


def keys_of(client: redis_py.Redis, uids: list[str]) -> list[str]:
    """Every key that names one of the batches."""
    return [key for key in client.scan_iter(match="ig:q:*") if any(uid in key for uid in uids)]


def run_to_the_end(world: World, tenant: str, count: int) -> list[str]:
    """Submit `count` batches at once and wait until each has Succeeded; their uids."""
    names = [
        batchworld.submit(world, tenant=tenant, items=ITEMS_PER_OPERATOR_BATCH)
        for _ in range(count)
    ]
    for name in names:
        batchworld.wait_phase(world, tenant=tenant, name=name, phase="Succeeded", timeout=180)
    return [batchworld.batch(world, tenant=tenant, name=name)["metadata"]["uid"] for name in names]


def test_fifty_batches_the_operator_runs_to_the_end_leave_the_regions_redis_at_baseline(
    world: World, region_redis: dict[str, redis.LocalRedis], tmp_path: pathlib.Path
) -> None:
    tenant = batchworld.tenant_in(
        world, region=REGION, prefix="hygiene", max_active_batches=BATCHES
    )
    pool = workerproc.Workers(
        redis_url=region_redis[REGION].url, storage=tmp_path / "images",
        logs=tmp_path / "logs", tenant=tenant, region=REGION,
    )  # fmt: skip
    client = redis_py.Redis(host="127.0.0.1", port=region_redis[REGION].port, decode_responses=True)
    try:
        for _ in range(2):
            asyncio.run(pool.start("--concurrency", "4"))
        # One batch first: the pool's own keys (its sequence, its rings) exist from then on.
        warmup = run_to_the_end(world, tenant, 1)
        waiting.until(
            lambda: keys_of(client, warmup) == [], timeout=RELEASE_SECONDS, what="warm-up keys gone"
        )
        # Redis allocates a little for each command the first time it runs (SCAN, INFO):
        # one sample before the baseline keeps that out of the comparison.
        footprint(client, keys.dedicated(tenant=tenant))
        baseline = footprint(client, keys.dedicated(tenant=tenant))

        uids = run_to_the_end(world, tenant, BATCHES)

        waiting.until(
            lambda: keys_of(client, uids) == [],
            timeout=RELEASE_SECONDS,
            what="the finished batches' keys gone",
            explain=lambda: f"left: {keys_of(client, uids)[:10]}",
        )
        after = footprint(client, keys.dedicated(tenant=tenant))
    finally:
        pool.stop_all()
        client.close()

    assert after.keys == baseline.keys > 0
    assert after.data_memory <= baseline.data_memory + MEMORY_SLACK_BYTES, (baseline, after)
