"""A region's reporter in-process, against the real management apiserver and a real Redis
(one node, then the 12-node Redis Cluster): a batch is followed by its pool's sharded
channel alone, its status ends Succeeded and its queue keys are released; the reporter
stops at once when cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiolimiter
import lightkube
import pytest
import redis.asyncio
from lightkube import codecs
from lightkube.models import meta_v1
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import redisconn, regions, resources
from imagegen.controller import batchevents, batchindex, relocation, reporter
from imagegen.queue import core, keys, model
from tests import builders
from tests.integration import conftest, operatorproc, waiting

REGION = "us-east"
POOL = keys.dedicated(tenant="acme")
ITEMS = 10


@pytest.fixture
def operator_stopped(running_operator: operatorproc.OperatorProcess) -> Iterator[None]:
    """The session's operator would reject these Tenant-less batches and report them
    itself: it is stopped meanwhile, and the reporter under test is the only one."""
    running_operator.stop()
    yield
    running_operator.start()


@pytest.fixture
def namespace(kube: lightkube.Client, crds_installed: None) -> Iterator[str]:
    name = f"tenant-reporter-{uuid.uuid4().hex[:6]}"
    kube.create(core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=name)))
    yield name
    kube.delete(core_v1.Namespace, name)


@pytest.fixture
async def region_redis_client(any_redis_url: str) -> AsyncIterator[redisconn.Client]:
    """Bytes, as the operator's clients answer."""
    client = await conftest.empty_redis(any_redis_url, decode_responses=False)
    yield client
    await client.aclose()


def queued_batch(kube: lightkube.Client, namespace: str) -> dict[str, Any]:
    """A batch as dispatch leaves it: Queued in us-east, its pool recorded."""
    name = f"batch-{uuid.uuid4().hex[:6]}"
    kube.create(codecs.from_dict(builders.make_batch(name).namespace(namespace).items(ITEMS).obj()))
    status = {
        "phase": "Queued", "region": REGION, "pool": POOL, "enqueuedRegions": [REGION],
        "counts": {"total": ITEMS, "queued": ITEMS}, "progress": f"0/{ITEMS}",
    }  # fmt: skip
    kube.patch(
        resources.ImageBatch.Status, name, {"status": status}, namespace=namespace,
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    found: dict[str, Any] = kube.get(resources.ImageBatch, name, namespace=namespace).to_dict()
    return found


async def test_a_batch_is_followed_by_its_pool_channel_alone_and_ends_with_its_keys_released(
    operator_stopped: None,
    kube: lightkube.Client,
    management_async: lightkube.AsyncClient,
    namespace: str,
    region_redis_client: redisconn.Client,
) -> None:
    body = queued_batch(kube, namespace)
    uid, name = body["metadata"]["uid"], body["metadata"]["name"]
    queue = core.Queue(redis=region_redis_client, pool=POOL)
    ref = model.BatchRef(uid=uid, tenant="acme", tier="standard", priority="normal")
    await queue.enqueue_batch(
        batch=ref, items=[model.ItemSpec(id=f"i{n}", payload={}) for n in range(ITEMS)]
    )
    region = regions.RegionClient(
        name=REGION, client=management_async, limiter=aiolimiter.AsyncLimiter(10),
        redis=region_redis_client,
    )  # fmt: skip
    registry = regions.Registry(clients={REGION: region})
    index = batchindex.Index()
    (each,) = reporter.reporters(
        registry=registry,
        index=index,
        mover=relocation.Mover(
            registry=registry,
            management=management_async,
            poster=batchevents.Poster(management=management_async),
        ),
        # No safety poll within the test: what it sees, it heard on the channel.
        settings=reporter.Settings(safety_poll_seconds=3600),
    ).values()
    running = asyncio.create_task(each.run())
    index.observe(body=body)

    async def status() -> dict[str, Any]:
        found = await management_async.get(resources.ImageBatch, name, namespace=namespace)
        got: dict[str, Any] = resources.as_dict(found).get("status") or {}
        return got

    try:
        await waiting.until_async(
            lambda: _listening(region_redis_client, queue.channel), seconds=10, what="subscribed"
        )
        while (lease := await queue.lease(worker_id="w1")) is not None:
            await queue.complete(lease=lease, result={"uri": f"file:///img/{lease.item_id}.png"})
            await asyncio.sleep(0.05)
        done = await waiting.until_async(
            lambda: _phase(status, "Succeeded"), seconds=20, what="Succeeded by the channel"
        )
    finally:
        running.cancel()
        async with asyncio.timeout(5):  # a reporter ends when it is told to
            with contextlib.suppress(asyncio.CancelledError):
                await running

    assert done["progress"] == f"{ITEMS}/{ITEMS}"
    assert done["counts"]["succeeded"] == ITEMS
    assert sorted(item["uri"] for item in done["items"]) == sorted(
        f"file:///img/i{n}.png" for n in range(ITEMS)
    )
    assert not await region_redis_client.exists(queue.keyspace.batch(uid=uid))
    assert index.get(uid) is None


async def _phase(status: Any, phase: str) -> dict[str, Any] | None:
    found: dict[str, Any] = await status()
    return found if found.get("phase") == phase else None


async def _listening(client: redisconn.Client, channel: str) -> bool:
    """Whether someone listens to the shard channel (PUBSUB SHARDNUMSUB on its node)."""
    if isinstance(client, redis.asyncio.RedisCluster):
        node = client.get_node_from_key(channel)
        reply = await client.execute_command("PUBSUB SHARDNUMSUB", channel, target_nodes=node)
    else:
        reply = await client.execute_command("PUBSUB SHARDNUMSUB", channel)
    # redis-py answers [(channel, subscribers)].
    return any(int(count) > 0 for _, count in reply)
