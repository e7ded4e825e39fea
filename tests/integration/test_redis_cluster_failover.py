"""The queue on the 12-node Redis Cluster while the primary holding the pool's slot is
killed with SIGKILL mid-batch (its replica is promoted): real worker processes finish the
batch, nothing is lost, every image is stored once, and the batch's counts match its
items' states exactly. The killed node comes back as a replica afterwards, so the
session's cluster is whole again for the tests after this one."""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis import exceptions as redis_errors

from imagegen import redisconn
from imagegen.localcluster import rediscluster
from imagegen.queue import core, keys, model, payload
from tests.integration import conftest, workerproc

UID = "5b1e0c8a-77d4-4a51-9f0e-cluster-failover"
BATCH = model.BatchRef(uid=UID, tenant="acme", tier="priority", priority="normal")
WORK = payload.WorkItem(prompt="a lighthouse at dawn", width=32, height=32, providers=("local",))
ITEMS = 100
PROGRESS_SECONDS = 180.0


@pytest.fixture
async def client(redis_cluster: rediscluster.LocalRedisCluster) -> AsyncIterator[redisconn.Client]:
    client = await conftest.empty_redis(redis_cluster.url, decode_responses=True)
    yield client
    await client.aclose()


async def progress_when(
    queue: core.Queue, done: Callable[[model.BatchProgress], bool], *, what: str
) -> model.BatchProgress:
    """Poll the batch until `done(progress)`; Redis errors while the cluster fails over
    count as "not yet", within the same bound (the last one is reported)."""
    deadline = time.monotonic() + PROGRESS_SECONDS
    seen: object = None
    while True:
        try:
            seen = await queue.progress(batch_uid=UID)
            if done(seen):
                return seen
        except redis_errors.RedisError as error:
            seen = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {PROGRESS_SECONDS}s: {seen!r}")
        await asyncio.sleep(0.1)


async def test_killing_the_pools_primary_mid_batch_loses_no_item_and_keeps_counts_exact(
    redis_cluster: rediscluster.LocalRedisCluster,
    client: redisconn.Client,
    tmp_path: pathlib.Path,
) -> None:
    queue = core.Queue(redis=client, pool=keys.dedicated(tenant="acme"))
    storage = tmp_path / "images"
    workers = workerproc.Workers(redis_url=redis_cluster.url, storage=storage, logs=tmp_path)
    doomed = redis_cluster.primary_of(queue.keyspace.seq)
    try:
        for _ in range(2):
            await workers.start(
                "--concurrency", "4", "--simulated-cost-seconds", "0.5", "--lease-seconds", "5"
            )
        ids = [f"i{n:03d}" for n in range(ITEMS)]
        specs = [model.ItemSpec(id=item_id, payload=WORK.to_json()) for item_id in ids]
        assert await queue.enqueue_batch(batch=BATCH, items=specs) == ITEMS
        before = await progress_when(queue, lambda p: p.succeeded >= 20, what="20 items done")
        # Half a second an item, 8 at a time: the rest takes seconds, the kill milliseconds.
        assert before.succeeded < ITEMS

        doomed.kill()
        progress = await progress_when(queue, lambda p: p.finished, what="the batch finished")

        assert redis_cluster.primary_of(queue.keyspace.seq).port != doomed.port
        assert (progress.total, progress.succeeded, progress.failed) == (ITEMS, ITEMS, 0)
        assert (progress.queued, progress.running, progress.cancelled) == (0, 0, 0)
        assert sorted(entry.id for entry in progress.items) == ids
        assert all(entry.state == "Succeeded" for entry in progress.items)
        stored = sorted(path.name for path in (storage / "acme" / UID).iterdir())
        assert [name for name in stored if not name.startswith(".")] == [
            f"{item_id}.png" for item_id in ids
        ]
        uris = {entry.result["uri"] for entry in progress.items if entry.result}
        assert len(uris) == ITEMS
    finally:
        workers.stop_all()
        # The killed node rejoins from its nodes.conf, as a replica of its successor.
        doomed.restart()
        redis_cluster.wait_healthy()
