"""Workers as processes against a real redis-server: a batch made by two of them, a worker
killed with SIGKILL or stopped with SIGTERM mid-batch, the probes, and providers failing.
Items are enqueued with the queue's own API, as the operator does."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis
from PIL import Image

from imagegen import redisconn
from imagegen.api import redisconfig
from imagegen.localcluster import process
from imagegen.localcluster import redis as localredis
from imagegen.queue import core, keys, model, payload
from tests.integration import fakeopenai, workerproc
from tests.integration.conftest import SCRATCH_DB, tls_credentials

"""The operator's tests use DB 0 and the queue's DB 9 of the same server."""
UID = "3d8f7a52-1c1e-4c59-9a0b-5e2f4b6c7d80"
BATCH = model.BatchRef(uid=UID, tenant="acme", tier="standard", priority="normal")
WORK = payload.WorkItem(prompt="a lighthouse at dawn", width=64, height=48, providers=("local",))
PROGRESS_SECONDS = 60.0
VIA_OPENAI = payload.WorkItem(
    prompt="a lighthouse", width=64, height=48, provider="openai", providers=("openai", "local")
)


@pytest.fixture
def client(scratch_redis: aioredis.Redis) -> aioredis.Redis:
    return scratch_redis


@pytest.fixture
def queue(client: aioredis.Redis) -> core.Queue:
    return core.Queue(redis=client, pool=keys.dedicated(tenant="acme"))


@pytest.fixture
def storage(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "images"


@pytest.fixture
def workers(
    redis_server: localredis.LocalRedis, storage: pathlib.Path, tmp_path: pathlib.Path
) -> Iterator[workerproc.Workers]:
    started = workerproc.Workers(
        redis_url=f"{redis_server.url.rsplit('/', 1)[0]}/{SCRATCH_DB}",
        storage=storage,
        logs=tmp_path / "logs",
    )
    yield started
    started.stop_all()


async def enqueue(queue: core.Queue, count: int, *, work: payload.WorkItem = WORK) -> list[str]:
    ids = [f"i{n:02d}" for n in range(count)]
    specs = [model.ItemSpec(id=item_id, payload=work.to_json()) for item_id in ids]
    assert await queue.enqueue_batch(batch=BATCH, items=specs) == count
    return ids


async def until(
    queue: core.Queue,
    done: Callable[[model.BatchProgress], bool],
    *,
    what: str = "progress",
) -> model.BatchProgress:
    """Poll the batch's progress until `done(progress)` holds."""
    deadline = time.monotonic() + PROGRESS_SECONDS
    while True:
        progress = await queue.progress(batch_uid=UID)
        if done(progress):
            return progress
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {PROGRESS_SECONDS}s: {progress}")
        await asyncio.sleep(0.1)


def finished(progress: model.BatchProgress) -> bool:
    return progress.finished


def image_files(storage: pathlib.Path) -> list[str]:
    """Every image name under the batch's folder, leaving out the temporary files that a
    write cut short by SIGKILL leaves behind."""
    folder = storage / "acme" / UID
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


async def held_by(
    client: aioredis.Redis, queue: core.Queue, worker: workerproc.WorkerProcess, ids: list[str]
) -> list[str]:
    """The items whose current lease is the worker's (its id ends with its pid)."""
    held = []
    for item_id in ids:
        owner = await client.hget(queue.keyspace.item(uid=UID, item_id=item_id), "worker")
        if owner is not None and owner.endswith(f"-{worker.pid}"):
            held.append(item_id)
    return held


async def test_two_workers_make_every_image_of_a_batch_once(
    queue: core.Queue, workers: workerproc.Workers, storage: pathlib.Path
) -> None:
    ids = await enqueue(queue, 20)
    first = await workers.start("--concurrency", "2")
    await workers.start("--concurrency", "2")

    assert await first.probe("/healthz") == (200, "ok\n")
    assert await first.probe("/readyz") == (200, "ok\n")
    progress = await until(queue, finished)

    assert (progress.succeeded, progress.failed) == (20, 0)
    assert image_files(storage) == [f"{item_id}.png" for item_id in ids]
    for entry in progress.items:
        path = storage / "acme" / UID / f"{entry.id}.png"
        with Image.open(path) as image:
            assert (image.format, image.size) == ("PNG", (64, 48))
        assert entry.result is not None
        assert entry.result["uri"] == path.as_uri()
        assert entry.result["provider"] == "local"
        assert entry.result["bytes"] == path.stat().st_size
        assert entry.attempts == 1


async def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    client: aioredis.Redis,
    queue: core.Queue,
    workers: workerproc.Workers,
    storage: pathlib.Path,
) -> None:
    slow = ("--simulated-cost-seconds", "0.3", "--lease-seconds", "2", "--concurrency", "2")
    doomed = await workers.start(*slow)
    await workers.start(*slow)
    # Both are up before the items come, so both take a share, the doomed one included.
    ids = await enqueue(queue, 20)
    deadline = time.monotonic() + 30
    while not (in_flight := await held_by(client, queue, doomed, ids)):
        assert time.monotonic() < deadline, "the worker never held an item"
        await asyncio.sleep(0.02)

    doomed.signal(signal.SIGKILL)
    progress = await until(queue, finished)

    assert await doomed.exit_code() == -signal.SIGKILL
    assert (progress.succeeded, progress.failed) == (20, 0)
    assert image_files(storage) == [f"{item_id}.png" for item_id in ids]
    uris = [entry.result["uri"] for entry in progress.items if entry.result]
    assert len(set(uris)) == 20
    redelivered = [entry for entry in progress.items if entry.id in in_flight]
    assert all(entry.attempts >= 2 for entry in redelivered), redelivered


async def test_sigterm_lets_items_in_flight_finish_then_exits_zero(
    client: aioredis.Redis,
    queue: core.Queue,
    workers: workerproc.Workers,
    storage: pathlib.Path,
) -> None:
    ids = await enqueue(queue, 8)
    stopping = await workers.start("--simulated-cost-seconds", "0.5", "--concurrency", "2")
    await until(queue, lambda progress: progress.running == 2, what="two items running")
    in_flight = await held_by(client, queue, stopping, ids)

    stopping.signal(signal.SIGTERM)

    assert await stopping.exit_code() == 0
    progress = await queue.progress(batch_uid=UID)
    assert progress.running == 0
    states = {entry.id: (entry.state, entry.attempts) for entry in progress.items}
    assert all(states[item_id] == ("Succeeded", 1) for item_id in in_flight), states
    assert progress.queued > 0
    await workers.start()
    progress = await until(queue, finished)
    assert (progress.succeeded, len(image_files(storage))) == (8, 8)


async def test_sigterm_hands_back_items_that_cannot_finish_in_the_grace(
    queue: core.Queue, workers: workerproc.Workers, storage: pathlib.Path
) -> None:
    await enqueue(queue, 4)
    stopping = await workers.start(
        "--simulated-cost-seconds", "6", "--concurrency", "2", "--grace-seconds", "2"
    )
    await until(queue, lambda progress: progress.running == 2, what="two items running")

    stopping.signal(signal.SIGTERM)

    await stopping.wait_until("/readyz", status=503)
    assert await stopping.probe("/readyz") == (503, "stopping\n")
    assert await stopping.probe("/healthz") == (200, "ok\n")
    assert await stopping.exit_code() == 0
    progress = await queue.progress(batch_uid=UID)
    assert (progress.queued, progress.running, progress.succeeded) == (4, 0, 0)
    assert all(entry.attempts == 0 for entry in progress.items)
    assert not (storage / "acme" / UID).exists()
    await workers.start("--concurrency", "2")
    progress = await until(queue, finished)
    assert progress.succeeded == 4
    assert all(entry.attempts == 1 for entry in progress.items)


async def test_readiness_fails_while_redis_is_unreachable_but_the_worker_lives(
    workers: workerproc.Workers,
) -> None:
    workers.redis_url = f"redis://127.0.0.1:{process.free_port()}/0"
    worker = await workers.start(ready=False)

    status, body = await worker.probe("/readyz")

    assert (status, body) == (503, "redis unreachable (ConnectionError)\n")
    assert (await worker.probe("/healthz"))[0] == 200
    worker.signal(signal.SIGTERM)
    assert await worker.exit_code() == 0


@pytest.fixture
async def tls_queue(tls_redis: localredis.LocalTlsRedis) -> AsyncIterator[core.Queue]:
    """The pool's queue on the TLS Redis with a private CA and a password, emptied first."""
    client = redisconn.connect(
        redisconfig.RedisSettings(url=tls_redis.url), credentials=tls_credentials(tls_redis)
    )
    await client.flushdb()
    yield core.Queue(redis=client, pool=keys.dedicated(tenant="acme"))
    await client.aclose()


async def test_a_worker_reaches_a_tls_redis_of_a_private_ca_with_its_password(
    tls_redis: localredis.LocalTlsRedis,
    tls_queue: core.Queue,
    workers: workerproc.Workers,
    storage: pathlib.Path,
) -> None:
    """As the worker Deployment runs it: the URL, the CA file and the password from env."""
    ids = await enqueue(tls_queue, 4)
    workers.redis_url = tls_redis.url
    await workers.start(
        env={
            "IMAGEGEN_REDIS_CA_FILE": str(tls_redis.pki.ca_cert),
            "IMAGEGEN_REDIS_PASSWORD": tls_redis.password,
        }
    )

    progress = await until(tls_queue, finished)

    assert (progress.succeeded, progress.failed) == (4, 0)
    assert image_files(storage) == [f"{item_id}.png" for item_id in ids]


async def test_without_the_private_ca_a_worker_does_not_trust_the_tls_redis(
    tls_redis: localredis.LocalTlsRedis, workers: workerproc.Workers
) -> None:
    workers.redis_url = tls_redis.url
    worker = await workers.start(env={"IMAGEGEN_REDIS_PASSWORD": tls_redis.password}, ready=False)

    status, body = await worker.probe("/readyz")

    assert status == 503
    assert body.startswith("redis unreachable"), body
    assert "certificate verify failed" in worker.log()
    worker.signal(signal.SIGTERM)
    assert await worker.exit_code() == 0


async def test_a_malformed_payload_fails_at_once_with_the_field_named(
    queue: core.Queue, workers: workerproc.Workers
) -> None:
    bad = model.ItemSpec(id="bad", payload={"prompt": "p", "width": "wide"})
    good = model.ItemSpec(id="good", payload=WORK.to_json())
    await queue.enqueue_batch(batch=BATCH, items=[bad, good])
    await workers.start()

    progress = await until(queue, finished)

    entries = {entry.id: entry for entry in progress.items}
    assert (entries["bad"].state, entries["bad"].attempts) == ("Failed", 1)
    assert entries["bad"].error == "payload.width: must be an integer, got str"
    assert entries["good"].state == "Succeeded"


@pytest.mark.parametrize(
    ("failure", "retryable", "error"),
    [
        (fakeopenai.Fail(status=400, message="size unsupported"), False, "HTTP 400"),
        (fakeopenai.Fail(status=500, retry_after="0"), True, "gave up after 4 attempts"),
    ],
    ids=["refused", "down"],
)
async def test_a_failing_provider_falls_back_to_the_next_and_says_so(
    queue: core.Queue,
    workers: workerproc.Workers,
    failure: fakeopenai.Fail,
    retryable: bool,
    error: str,
) -> None:
    await enqueue(queue, 3, work=VIA_OPENAI)
    async with fakeopenai.serve() as server:
        server.always = failure
        await workers.start(
            "--providers", "openai,local", "--openai-base-url", server.base_url,
            env={"OPENAI_API_KEY": fakeopenai.KEY},
        )  # fmt: skip
        progress = await until(queue, finished)

    assert progress.succeeded == 3
    for entry in progress.items:
        assert entry.result is not None
        assert entry.result["provider"] == "local"
        [fallback] = entry.result["fallbacks"]
        assert (fallback["provider"], fallback["retryable"]) == ("openai", retryable)
        assert error in fallback["error"]


@pytest.mark.parametrize(
    ("failure", "attempts", "error"),
    [
        (fakeopenai.Fail(status=400, message="size unsupported"), 1, "HTTP 400: size unsupported"),
        (fakeopenai.Fail(status=500, retry_after="0"), 3, "HTTP 500: server trouble"),
    ],
    ids=["refused-fails-at-once", "down-fails-after-max-attempts"],
)
async def test_with_only_a_failing_provider_items_fail_with_its_error(
    queue: core.Queue,
    workers: workerproc.Workers,
    storage: pathlib.Path,
    failure: fakeopenai.Fail,
    attempts: int,
    error: str,
) -> None:
    only_openai = payload.WorkItem(
        prompt="a lighthouse", width=64, height=48, providers=("openai",)
    )
    await enqueue(queue, 2, work=only_openai)
    async with fakeopenai.serve() as server:
        server.always = failure
        await workers.start(
            "--providers", "openai", "--openai-base-url", server.base_url,
            env={"OPENAI_API_KEY": fakeopenai.KEY},
        )  # fmt: skip
        progress = await until(queue, finished)

    assert progress.failed == 2
    for entry in progress.items:
        assert (entry.state, entry.attempts) == ("Failed", attempts)
        assert entry.error is not None
        assert entry.error.startswith("all providers failed: openai: openai: ")
        assert error in entry.error
    assert not (storage / "acme" / UID).exists()
