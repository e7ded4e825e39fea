"""The webhook producer on a real apiserver: a batch's status changes become the events
its webhook subscribed to, in order, each appended to the outbox exactly once, even when
the producer restarts and sees every batch again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import lightkube
import pytest
import redis.asyncio as aioredis
from lightkube import codecs
from lightkube.models import meta_v1
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.gateway.webhooks import keys, producer
from tests import builders
from tests.integration import operatorproc, waiting

pytestmark = pytest.mark.usefixtures("crds_installed")

URL = "https://hooks.example.com/imagegen"
EVERY_EVENT = ("queued", "running", "progress", "succeeded", "failed", "cancelled")


@pytest.fixture(scope="module", autouse=True)
def operator_paused(running_operator: operatorproc.OperatorProcess) -> Iterator[None]:
    """These tests write batch status by hand: the session's operator, which would reject
    their Tenant-less batches and write a status of its own, is stopped meanwhile."""
    running_operator.stop()
    yield
    running_operator.start()


@pytest.fixture
def namespace(kube: lightkube.Client) -> Iterator[str]:
    name = f"tenant-hooks-{uuid.uuid4().hex[:6]}"
    kube.create(core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=name)))
    yield name
    kube.delete(core_v1.Namespace, name)


class Producer:
    """The producer as a task, started and stopped like the gateway process would."""

    def __init__(self, *, kube: lightkube.AsyncClient, redis: aioredis.Redis) -> None:
        self._kube, self._redis = kube, redis
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(producer.run(kube=self._kube, redis=self._redis))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@pytest.fixture
async def running_producer(
    management_async: lightkube.AsyncClient, scratch_redis: aioredis.Redis
) -> AsyncIterator[Producer]:
    started = Producer(kube=management_async, redis=scratch_redis)
    started.start()
    yield started
    await started.stop()


def create_batch(kube: lightkube.Client, namespace: str, name: str, *subscribed: Any) -> None:
    body = builders.make_batch(name, tenant="hooks").namespace(namespace).items(10)
    kube.create(codecs.from_dict(body.webhook(URL, *subscribed).obj()))


def set_status(kube: lightkube.Client, namespace: str, name: str, **status: Any) -> None:
    kube.patch(
        resources.ImageBatch.Status,
        name,
        {"status": status},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


async def outbox_events(redis: aioredis.Redis, namespace: str) -> list[tuple[str, str]]:
    """(type, data.id or percent) of the outbox entries of batches in `namespace`, in
    stream order (the producer watches all namespaces, other tests' included)."""
    found = []
    rows: Any = await redis.xrange(keys.stream())
    for _, fields in rows:
        data = json.loads(fields["body"])["data"]
        if data["namespace"] == namespace:
            found.append((fields["type"], str(data.get("percent", data["id"]))))
    return found


async def test_a_batch_run_yields_its_events_in_order_and_a_restart_repeats_none(
    kube: lightkube.Client,
    namespace: str,
    running_producer: Producer,
    scratch_redis: aioredis.Redis,
) -> None:
    create_batch(kube, namespace, "b1", *EVERY_EVENT)
    set_status(kube, namespace, "b1", phase="Queued", progress="0/10")

    async def seen(count: int) -> list[tuple[str, str]] | None:
        found = await outbox_events(scratch_redis, namespace)
        return found if len(found) >= count else None

    # The watch is running once the first event is in: then every later change is seen.
    await waiting.until_async(lambda: seen(1), seconds=60, what="batch.queued")
    for finished in range(10):
        set_status(kube, namespace, "b1", phase="Running", progress=f"{finished}/10")
    set_status(kube, namespace, "b1", phase="Succeeded", progress="10/10")
    expected = [
        ("batch.queued", "b1"),
        ("batch.started", "b1"),
        *(("batch.progress", str(step * 10)) for step in range(1, 10)),
        ("batch.completed", "b1"),
    ]
    events = await waiting.until_async(lambda: seen(len(expected)), seconds=60, what="events")
    assert events == expected

    await running_producer.stop()
    # A second batch, named after the first: the restarted watch lists b1 before it, so
    # once b2's event is in, b1 has been seen again.
    create_batch(kube, namespace, "b2", "queued")
    set_status(kube, namespace, "b2", phase="Queued", progress="0/10")
    running_producer.start()
    after = await waiting.until_async(
        lambda: seen(len(expected) + 1), seconds=60, what="b2 after the restart"
    )
    await asyncio.sleep(1)  # room for a duplicate, were there one

    assert after == [*expected, ("batch.queued", "b2")]
    assert await outbox_events(scratch_redis, namespace) == after


async def test_only_the_subscribed_events_of_each_batch_are_appended(
    kube: lightkube.Client,
    namespace: str,
    running_producer: Producer,
    scratch_redis: aioredis.Redis,
) -> None:
    create_batch(kube, namespace, "quiet")  # the default: only events that end a batch
    kube.create(
        codecs.from_dict(builders.make_batch("nohook", tenant="hooks").namespace(namespace).obj())
    )
    for name in ("quiet", "nohook"):
        set_status(kube, namespace, name, phase="Running", progress="5/10")
        set_status(kube, namespace, name, phase="PartiallySucceeded", progress="10/10")

    async def completed() -> list[tuple[str, str]] | None:
        found = await outbox_events(scratch_redis, namespace)
        return found or None

    found = await waiting.until_async(completed, seconds=60, what="batch.completed")
    await asyncio.sleep(1)

    assert found == [("batch.completed", "quiet")]
    assert await outbox_events(scratch_redis, namespace) == found
