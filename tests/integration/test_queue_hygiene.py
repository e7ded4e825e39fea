"""Queue hygiene: once a batch is finished and its status written, the operator releases
its queue keys (`controller.cleanup.release_queue`); after 50 batches the region's Redis
holds no more keys, and no more memory, than before them."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from imagegen.controller import cleanup
from imagegen.queue import core, keys, model, payload

pytestmark = pytest.mark.integration

POOL = keys.dedicated(tenant="acme")
WORK = payload.WorkItem(
    prompt="a lighthouse at dawn " * 20, width=64, height=48, providers=("local",)
)
BATCHES = 50
ITEMS = 20
MEMORY_SLACK_BYTES = 64 * 1024
"""Allocator noise of redis-server's used_memory between two samples of the same keyspace."""


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
