"""Workers storing into a real S3-compatible server (versitygw): every image lands as one
whole object with its metadata; a worker killed while its PUT is on the wire leaves no
partial object, and the batch completes; wrong keys are reported with the region's store
named and no secret in any log. (The store down for 30 s, with the operator showing it on
the batch: test_store_outage.)"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import pathlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from imagegen.localcluster import redis as localredis
from imagegen.localcluster import s3server
from imagegen.queue import core, keys, model, payload, storehealth
from imagegen.storage import base, stores
from tests.integration import s3fixtures, storeproxy, workerproc
from tests.integration.conftest import SCRATCH_DB

pytestmark = pytest.mark.integration

UID = "6a1f2b3c-4d5e-4f60-8a71-92b3c4d5e6f7"
BATCH = model.BatchRef(uid=UID, tenant="acme", tier="standard", priority="normal")
WORK = payload.WorkItem(prompt="a lighthouse at dawn", width=64, height=48, providers=("local",))
POOL = keys.dedicated(tenant="acme")
PROGRESS_SECONDS = 120.0


@pytest.fixture
def queue(scratch_redis: aioredis.Redis) -> core.Queue:
    return core.Queue(redis=scratch_redis, pool=POOL)


@pytest.fixture
def workers(
    redis_server: localredis.LocalRedis, s3_server: s3server.LocalS3, tmp_path: pathlib.Path
) -> Iterator[workerproc.Workers]:
    started = workerproc.Workers(
        redis_url=f"{redis_server.url.rsplit('/', 1)[0]}/{SCRATCH_DB}",
        storage=tmp_path / "scratch",
        logs=tmp_path / "logs",
    )
    yield started
    started.stop_all()


@pytest.fixture
async def store(s3_server: s3server.LocalS3) -> AsyncIterator[base.Store]:
    async with stores.open_store(
        config=s3_server.config(), credentials=s3fixtures.credentials(s3_server)
    ) as opened:
        yield opened


async def enqueue(queue: core.Queue, count: int) -> list[str]:
    ids = [f"i{n:03d}" for n in range(count)]
    specs = [model.ItemSpec(id=item_id, payload=WORK.to_json()) for item_id in ids]
    assert await queue.enqueue_batch(batch=BATCH, items=specs) == count
    return ids


async def until(what: str, check: Callable[[], Awaitable[bool]], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds}s")
        await asyncio.sleep(0.1)


async def finished(queue: core.Queue) -> model.BatchProgress:
    progress: list[model.BatchProgress] = []

    async def done() -> bool:
        progress[:] = [await queue.progress(batch_uid=UID)]
        return progress[0].finished

    await until("batch finished", done, seconds=PROGRESS_SECONDS)
    return progress[0]


async def assert_every_object_whole(
    store: base.Store, progress: model.BatchProgress, ids: list[str]
) -> None:
    """Each item's object exists once, its bytes hash to the SHA-256 the worker recorded
    and stored as metadata, and its metadata names tenant, batch and item."""
    for entry in progress.items:
        assert entry.result is not None, entry
        key = f"acme/{UID}/{entry.id}.png"
        assert entry.result["uri"] == f"s3://images/{key}"
        found = await store.head(key=key)
        assert found is not None, key
        data = b"".join([chunk async for chunk in store.read(key=key)])
        digest = hashlib.sha256(data).hexdigest()
        assert digest == found.metadata["sha256"] == entry.result["sha256"]
        assert found.content_type == "image/png"
        assert (found.metadata["tenant"], found.metadata["batch"], found.metadata["item"]) == (
            "acme",
            UID,
            entry.id,
        )
    assert sorted(entry.id for entry in progress.items) == ids


async def assert_all_stored(
    queue: core.Queue, store: base.Store, server: s3server.LocalS3, ids: list[str]
) -> None:
    """The batch finishes with every item succeeded, each one whole object on disk."""
    progress = await finished(queue)
    assert (progress.succeeded, progress.failed) == (len(ids), 0)
    await assert_every_object_whole(store, progress, ids)
    assert objects_on_disk(server) == [f"{item_id}.png" for item_id in ids]


def objects_on_disk(server: s3server.LocalS3) -> list[str]:
    folder = server.object_path(f"acme/{UID}")
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


async def test_a_batch_lands_as_one_whole_object_per_item_with_metadata(
    queue: core.Queue,
    workers: workerproc.Workers,
    s3_server: s3server.LocalS3,
    store: base.Store,
) -> None:
    ids = await enqueue(queue, 20)
    await workers.start(
        *s3fixtures.worker_args(s3_server),
        "--concurrency",
        "4",
        env=s3fixtures.worker_env(s3_server),
    )

    await assert_all_stored(queue, store, s3_server, ids)


@pytest.fixture
async def slow_store(s3_server: s3server.LocalS3) -> AsyncIterator[storeproxy.StoreProxy]:
    """The store behind a proxy that sends request bodies at 4 KiB/s: a 512x512 image
    (about 16 KiB) is on the wire for some seconds."""
    proxy = storeproxy.StoreProxy(upstream_port=s3_server.port, bytes_per_second=4096)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_a_worker_killed_while_its_put_is_on_the_wire_leaves_no_partial_object(
    queue: core.Queue,
    workers: workerproc.Workers,
    s3_server: s3server.LocalS3,
    slow_store: storeproxy.StoreProxy,
    store: base.Store,
) -> None:
    large = dataclasses.replace(WORK, width=512, height=512)
    ids = [f"i{n:03d}" for n in range(4)]
    specs = [model.ItemSpec(id=item_id, payload=large.to_json()) for item_id in ids]
    assert await queue.enqueue_batch(batch=BATCH, items=specs) == len(ids)
    lease_args = ("--concurrency", "1", "--lease-seconds", "3")
    through_proxy = (
        "--store-url", f"s3://{s3_server.bucket}", "--store-endpoint", slow_store.endpoint,
        "--store-path-style", "true",
    )  # fmt: skip
    doomed = await workers.start(*through_proxy, *lease_args, env=s3fixtures.worker_env(s3_server))

    async def image_put_half_sent() -> bool:
        return any(
            upload.method == "PUT"
            and upload.path.startswith(f"/{s3_server.bucket}/acme/{UID}/")
            and 4 * storeproxy.PIECE_BYTES <= upload.sent < upload.total
            for upload in slow_store.in_flight
        )

    async def cut_off() -> bool:
        return bool(slow_store.cut_off)

    await until("an image PUT half sent", image_put_half_sent, seconds=60)
    doomed.signal(signal.SIGKILL)
    assert await doomed.exit_code() == -signal.SIGKILL
    await until("the proxy saw the PUT cut off", cut_off, seconds=10)
    (cut,) = slow_store.cut_off
    key = cut.path.removeprefix(f"/{s3_server.bucket}/")
    assert cut.sent < cut.total
    assert await store.head(key=key) is None
    assert pathlib.PurePath(key).name not in objects_on_disk(s3_server)

    await workers.start(
        *s3fixtures.worker_args(s3_server), *lease_args, env=s3fixtures.worker_env(s3_server)
    )

    await assert_all_stored(queue, store, s3_server, ids)


async def test_wrong_keys_are_reported_naming_the_store_and_no_secret_is_logged(
    queue: core.Queue,
    workers: workerproc.Workers,
    s3_server: s3server.LocalS3,
    scratch_redis: aioredis.Redis,
) -> None:
    wrong = "wrong-secret-" + "x" * 20
    await enqueue(queue, 2)
    worker = await workers.start(
        *s3fixtures.worker_args(s3_server),
        "--concurrency",
        "2",
        env=s3fixtures.worker_env(s3_server, secret=wrong),
    )

    async def reported() -> bool:
        return await storehealth.read(redis=scratch_redis, pool=POOL) is not None

    await until("the pool reports the refusal", reported, seconds=30)
    trouble = await storehealth.read(redis=scratch_redis, pool=POOL)
    assert trouble is not None
    assert trouble.reason == "AccessDenied"
    assert s3_server.endpoint in trouble.store
    assert (await queue.progress(batch_uid=UID)).failed == 0
    log = worker.log()
    assert "AccessDenied" in log
    assert wrong not in log
    assert s3_server.secret_access_key not in log
    assert wrong not in str(trouble)
