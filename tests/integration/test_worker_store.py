"""Workers storing into a real S3-compatible server (versitygw): every image lands as one
whole object with its metadata; a worker killed mid-upload leaves no partial object; the
store stopped for 30 s delays the batch without failing an item; wrong keys are reported
with the region's store named and no secret in any log."""

from __future__ import annotations

import asyncio
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
from tests.integration import s3fixtures, workerproc
from tests.integration.conftest import SCRATCH_DB

pytestmark = pytest.mark.integration

UID = "6a1f2b3c-4d5e-4f60-8a71-92b3c4d5e6f7"
BATCH = model.BatchRef(uid=UID, tenant="acme", tier="standard", priority="normal")
WORK = payload.WorkItem(prompt="a lighthouse at dawn", width=64, height=48, providers=("local",))
POOL = keys.dedicated(tenant="acme")
PROGRESS_SECONDS = 120.0
OUTAGE_SECONDS = 30.0
"""How long the store is down in the outage test, as the issue asks."""


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


async def test_a_worker_killed_mid_batch_leaves_only_whole_objects(
    queue: core.Queue,
    workers: workerproc.Workers,
    s3_server: s3server.LocalS3,
    store: base.Store,
) -> None:
    ids = await enqueue(queue, 8)
    doomed = await workers.start(
        *s3fixtures.worker_args(s3_server), "--concurrency", "4", "--lease-seconds", "3",
        "--simulated-cost-seconds", "1", env=s3fixtures.worker_env(s3_server),
    )  # fmt: skip

    async def some_stored_some_running() -> bool:
        progress = await queue.progress(batch_uid=UID)
        return progress.succeeded >= 1 and progress.running >= 1

    await until("a worker between two uploads", some_stored_some_running, seconds=60)
    doomed.signal(signal.SIGKILL)
    assert await doomed.exit_code() == -signal.SIGKILL
    await workers.start(
        *s3fixtures.worker_args(s3_server),
        "--concurrency",
        "4",
        env=s3fixtures.worker_env(s3_server),
    )

    await assert_all_stored(queue, store, s3_server, ids)


async def test_a_store_down_for_30_s_delays_the_batch_and_fails_nothing(
    queue: core.Queue,
    workers: workerproc.Workers,
    s3_server: s3server.LocalS3,
    store: base.Store,
    scratch_redis: aioredis.Redis,
) -> None:
    ids = await enqueue(queue, 30)
    await workers.start(
        *s3fixtures.worker_args(s3_server), "--concurrency", "2", "--simulated-cost-seconds", "0.2",
        "--lease-seconds", "6", env=s3fixtures.worker_env(s3_server),
    )  # fmt: skip

    async def some_stored() -> bool:
        return (await queue.progress(batch_uid=UID)).succeeded >= 3

    await until("some items stored", some_stored, seconds=60)

    s3_server.stop()

    async def reported() -> bool:
        return await storehealth.read(redis=scratch_redis, pool=POOL) is not None

    await until("the pool reports the store down", reported, seconds=30)
    trouble = await storehealth.read(redis=scratch_redis, pool=POOL)
    assert trouble is not None
    assert (trouble.reason, trouble.store) == (
        "Unreachable",
        f"s3://images at {s3_server.endpoint}",
    )
    await asyncio.sleep(OUTAGE_SECONDS)
    during = await queue.progress(batch_uid=UID)
    assert during.failed == 0
    assert not during.finished
    s3_server.restart()

    await assert_all_stored(queue, store, s3_server, ids)

    async def cleared() -> bool:
        return await storehealth.read(redis=scratch_redis, pool=POOL) is None

    await until("the report cleared", cleared, seconds=30)


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
