"""Benchmark: the worker's upload against bare PUTs of the same bytes, and the Redis
memory a finished batch leaves behind.

Starts its own redis-server and versitygw (the S3-compatible server of the tests), makes
`--images` PNGs with the local provider once, then, in one run against the same server:

- bare:   `put_object` of each image's bytes with a plain aiobotocore client, nothing
          else (no metadata, no checksum), `--concurrency` at a time;
- upload: the worker's own upload step (`ItemRunner.upload`) for each image, as a worker
          runs it once the image is made: its SHA-256, the metadata, the store's PUT
          with content type, metadata and a digest the store checks, inside the retry
          wrapper; `--concurrency` at a time;
- item:   whole items through `ItemRunner.run` as a worker runs them: lease from the
          queue, generate (a provider that hands out the ready-made image, so
          generation costs nothing), confirm the lease, upload, record the result;
          `--concurrency` slots. What it adds to `upload` is the queue's three round
          trips to Redis per item.

All three run `--rounds` times, in turn (the order reversed every other round), each
round on fresh keys; the median of each is reported (a shared machine's noise moves
single short runs by tens of percent). Prints images/s and this process's CPU time per
image of each, and the ratios to bare: by images/s, overall and round by round, and by
CPU per image, which the machine's other load blurs less (goal for the upload: >= 0.8).
Before those, on the fresh Redis, it runs `--batches` batches of 100 items through the
queue, releases each (`controller.cleanup`, as the operator does once a batch has ended)
and prints the key count and used_memory before and after: the Redis memory per finished
batch (goal 0 after cleanup).

    .venv/bin/python bench/storage_upload.py [--images 400] [--concurrency 8] [--noise]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import pathlib
import random
import secrets
import statistics
import tempfile
import time

import aiobotocore.session
import redis.asyncio as aioredis
from aiobotocore import config as aioconfig
from PIL import Image

from imagegen.api import objectstore
from imagegen.controller import cleanup
from imagegen.localcluster import build, s3server
from imagegen.localcluster import redis as localredis
from imagegen.queue import core, keys, model, payload
from imagegen.storage import base as storage
from imagegen.storage import stores
from imagegen.worker import items
from imagegen.worker.providers import base, chain, local

TENANT = "bench"
POOL = keys.dedicated(tenant=TENANT)
SIZE = 512


PATHS = ("bare", "upload", "item")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    images: int
    seconds: float
    cpu_seconds: float
    """CPU this process spent (all its threads): the benchmark's own cost per image, less
    moved by the machine's other load than the wall time."""

    @property
    def per_second(self) -> float:
        return self.images / self.seconds

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * self.cpu_seconds / self.images


class Clock:
    """Wall and CPU time from its start, for one run."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def run(self, *, images: int) -> Run:
        return Run(
            images=images,
            seconds=time.perf_counter() - self._wall,
            cpu_seconds=time.process_time() - self._cpu,
        )


class ReadyMade:
    """A provider that hands out images made beforehand, by prompt."""

    name = "local"

    def __init__(self, images: dict[str, base.GeneratedImage]) -> None:
        self._images = images

    async def generate(self, *, request: base.GenerationRequest) -> base.GeneratedImage:
        return self._images[request.prompt]

    async def aclose(self) -> None:
        """Nothing to release."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=SIZE, help="image width and height")
    parser.add_argument(
        "--noise", action="store_true", help="incompressible images (photo-sized PNGs)"
    )
    args = parser.parse_args()
    binary = build.ensure_built(only=("versitygw",))["versitygw"]
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        folder = pathlib.Path(scratch)
        redis_server = localredis.start(workdir=folder / "redis")
        s3 = s3server.start(binary=binary, workdir=folder / "s3")
        try:
            asyncio.run(measure(redis_url=redis_server.url, s3=s3, args=args))
        finally:
            s3.stop()
            redis_server.stop()


async def measure(*, redis_url: str, s3: s3server.LocalS3, args: argparse.Namespace) -> None:
    images = await make_images(count=args.images, size=args.size, noise=args.noise)
    runs: dict[str, list[Run]] = {path: [] for path in PATHS}
    client = aioredis.Redis.from_url(redis_url)
    try:
        # First, on the fresh Redis: the rounds below leave allocator state behind.
        await memory_per_batch(client=client, batches=args.batches)
        await client.flushdb()
        for round_number in range(args.rounds):
            # In turn, the order reversed every other round: a load that comes and goes
            # on a shared machine falls on every path alike.
            order = PATHS if round_number % 2 == 0 else PATHS[::-1]
            for path in order:
                await client.flushdb()
                runs[path].append(
                    await run_path(
                        path=path,
                        s3=s3,
                        client=client,
                        images=images,
                        concurrency=args.concurrency,
                        round_number=round_number,
                    )
                )
    finally:
        await client.aclose()
    size = sum(len(image.data) for image in images.values()) / len(images)
    kind = "random-pixel" if args.noise else "flat-colour"
    print(
        f"{len(images)} {kind} PNGs of {args.size}x{args.size}, "
        f"{size / 1024:.0f} KiB on average, "
        f"{args.concurrency} at a time, to versitygw on loopback, {args.rounds} rounds"
    )
    for name, done in runs.items():
        rates = ", ".join(f"{run.per_second:.1f}" for run in done)
        cpu = cpu_per_image(done)
        print(
            f"{name:>7}: median {median(done):8.1f} images/s, {cpu:.2f} ms CPU per image "
            f"(rounds: {rates})"
        )
    bare = median(runs["bare"])
    bare_cpu = cpu_per_image(runs["bare"])
    for name, note in (("upload", "goal >= 0.8"), ("item", "upload plus the queue")):
        pairs = ", ".join(
            f"{run.per_second / base.per_second:.2f}"
            for run, base in zip(runs[name], runs["bare"], strict=True)
        )
        print(
            f"  ratio {name} / bare: {median(runs[name]) / bare:.2f} by images/s, "
            f"{bare_cpu / cpu_per_image(runs[name]):.2f} by CPU per image ({note}; "
            f"images/s per round: {pairs})"
        )


async def run_path(
    *,
    path: str,
    s3: s3server.LocalS3,
    client: aioredis.Redis,
    images: dict[str, base.GeneratedImage],
    concurrency: int,
    round_number: int,
) -> Run:
    if path == "bare":
        return await run_bare(
            s3=s3, images=images, concurrency=concurrency, round_number=round_number
        )
    if path == "upload":
        return await run_upload(
            s3=s3, images=images, concurrency=concurrency, round_number=round_number
        )
    return await run_items(
        s3=s3, client=client, images=images, concurrency=concurrency, round_number=round_number
    )


def cpu_per_image(runs: list[Run]) -> float:
    """Median CPU ms per image: a ratio of these is what one path costs against another
    when the wall time is blurred by the rest of the machine."""
    return statistics.median(run.cpu_ms_per_image for run in runs)


def median(runs: list[Run]) -> float:
    return statistics.median(run.per_second for run in runs)


async def make_images(*, count: int, size: int, noise: bool) -> dict[str, base.GeneratedImage]:
    """The local provider's pictures (flat colours: small PNGs), or with `noise` PNGs of
    random pixels, which do not compress: the size a generated photo-like image has."""
    provider = local.LocalProvider(settings=local.LocalSettings())
    made = {}
    for n in range(count):
        prompt = f"a lighthouse, take {n}"
        if noise:
            made[prompt] = noise_png(size=size, seed=n)
            continue
        made[prompt] = await provider.generate(
            request=base.GenerationRequest(
                prompt=prompt, negative_prompt=None, width=size, height=size, seed=n, format="png"
            )
        )
    return made


def noise_png(*, size: int, seed: int) -> base.GeneratedImage:
    pixels = random.Random(seed).randbytes(size * size * 3)  # noqa: S311 (test pixels)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), pixels).save(buffer, format="PNG", compress_level=1)
    return base.GeneratedImage(
        data=buffer.getvalue(), content_type="image/png", provider="local", width=size, height=size
    )


async def run_bare(
    *,
    s3: s3server.LocalS3,
    images: dict[str, base.GeneratedImage],
    concurrency: int,
    round_number: int,
) -> Run:
    session = aiobotocore.session.get_session()
    async with session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        config=aioconfig.AioConfig(
            s3={"addressing_style": "path"},
            max_pool_connections=concurrency,
            request_checksum_calculation="when_required",
        ),
    ) as client:
        bodies = [image.data for image in images.values()]
        slots = asyncio.Semaphore(concurrency)

        async def put(n: int, body: bytes) -> None:
            async with slots:
                await client.put_object(
                    Bucket=s3.bucket, Key=f"bare/{round_number}/{n}.png", Body=body
                )

        clock = Clock()
        await asyncio.gather(*(put(n, body) for n, body in enumerate(bodies)))
        return clock.run(images=len(bodies))


async def run_upload(
    *,
    s3: s3server.LocalS3,
    images: dict[str, base.GeneratedImage],
    concurrency: int,
    round_number: int,
) -> Run:
    """The worker's upload step alone, for images already made and leased."""
    leases = [
        lease_of(uid=f"upload-{round_number}", item_id=f"i{n:05d}") for n in range(len(images))
    ]
    made = [chain.Outcome(image=image, provider="local") for image in images.values()]
    async with open_store(s3=s3, concurrency=concurrency) as store:
        runner = items.ItemRunner(queue=NO_QUEUE, providers={}, store=store)
        slots = asyncio.Semaphore(concurrency)

        async def upload(lease: model.Lease, outcome: chain.Outcome) -> None:
            name = objectstore.ImageName(
                tenant=lease.tenant, batch_uid=lease.batch_uid, item_id=lease.item_id,
                format="png",
            )  # fmt: skip
            async with slots:
                await runner.upload(lease=lease, outcome=outcome, name=name)

        clock = Clock()
        await asyncio.gather(
            *(upload(lease, outcome) for lease, outcome in zip(leases, made, strict=True))
        )
        return clock.run(images=len(leases))


async def run_items(
    *,
    s3: s3server.LocalS3,
    client: aioredis.Redis,
    images: dict[str, base.GeneratedImage],
    concurrency: int,
    round_number: int,
) -> Run:
    """Whole items, leased from the queue and recorded, as a worker's slots run them."""
    queue = core.Queue(redis=client, pool=POOL, lease_seconds=30)
    batch = model.BatchRef(
        uid=f"bench-{round_number}", tenant=TENANT, tier="standard", priority="normal"
    )
    specs = [
        model.ItemSpec(
            id=f"i{n:05d}",
            payload=payload.WorkItem(
                prompt=prompt,
                width=images[prompt].width,
                height=images[prompt].height,
                providers=("local",),
            ).to_json(),
        )
        for n, prompt in enumerate(images)
    ]
    await queue.enqueue_batch(batch=batch, items=specs)
    async with open_store(s3=s3, concurrency=concurrency) as store:
        runner = items.ItemRunner(queue=queue, providers={"local": ReadyMade(images)}, store=store)

        async def slot() -> int:
            done = 0
            while (lease := await queue.lease(worker_id="bench")) is not None:
                assert await runner.run(lease=lease) == "succeeded"
                done += 1
            return done

        clock = Clock()
        done = sum(await asyncio.gather(*(slot() for _ in range(concurrency))))
        return clock.run(images=done)


def lease_of(*, uid: str, item_id: str) -> model.Lease:
    """A first delivery of an item, as `Queue.lease` hands it out."""
    return model.Lease(
        batch_uid=uid,
        item_id=item_id,
        tenant=TENANT,
        tier="standard",
        priority="normal",
        payload={},
        attempt=1,
        worker_id="bench",
        token=secrets.token_hex(8),
        expires_at=time.time() + 60,
    )


def open_store(
    *, s3: s3server.LocalS3, concurrency: int
) -> contextlib.AbstractAsyncContextManager[storage.Store]:
    """The store as a worker with `concurrency` slots opens it."""
    credentials = stores.Credentials(
        access_key_id=s3.access_key_id, secret_access_key=s3.secret_access_key
    )
    return stores.open_store(config=s3.config(), credentials=credentials, connections=concurrency)


class NoQueue:
    """The upload step never calls its runner's queue."""

    lease_seconds = 30.0

    async def renew(self, *, lease: model.Lease) -> bool:
        raise AssertionError("upload renews no lease")

    async def complete(self, *, lease: model.Lease, result: model.Json) -> bool:
        raise AssertionError("upload records no result")

    async def fail(self, *, lease: model.Lease, error: str, retryable: bool) -> core.FailOutcome:
        raise AssertionError("upload fails no item")

    async def release(self, *, lease: model.Lease) -> bool:
        raise AssertionError("upload hands back no item")


NO_QUEUE = NoQueue()


async def memory_per_batch(*, client: aioredis.Redis, batches: int) -> None:
    queue = core.Queue(redis=client, pool=POOL)
    work = payload.WorkItem(
        prompt="a lighthouse at dawn", width=64, height=64, providers=("local",)
    )

    async def one(uid: str) -> None:
        batch = model.BatchRef(uid=uid, tenant=TENANT, tier="standard", priority="normal")
        specs = [model.ItemSpec(id=f"i{n:03d}", payload=work.to_json()) for n in range(100)]
        await queue.enqueue_batch(batch=batch, items=specs)
        while (lease := await queue.lease(worker_id="bench")) is not None:
            await queue.complete(lease=lease, result={"uri": f"s3://b/{uid}/{lease.item_id}"})
        await cleanup.release_queue(redis=client, region="bench", pool=POOL, batch_uid=uid)

    await one("warmup")
    # Redis allocates a little for each command the first time it runs (DBSIZE, INFO):
    # a sample before the baseline keeps that out of the comparison.
    await client.dbsize(), await used_memory(client)
    before_keys, before = await client.dbsize(), await used_memory(client)
    for n in range(batches):
        await one(f"batch-{n:03d}")
    after_keys, after = await client.dbsize(), await used_memory(client)
    print(
        f"Redis after {batches} finished batches of 100, each released: "
        f"keys {before_keys} -> {after_keys}, used_memory {before} -> {after} bytes"
    )
    print(
        f"  Redis memory per finished batch: {(after - before) / batches:.0f} bytes "
        f"(goal 0 after cleanup)"
    )


async def used_memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


if __name__ == "__main__":
    main()
