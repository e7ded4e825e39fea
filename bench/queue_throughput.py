"""Benchmark: the queue's enqueue + lease + ack throughput against a bare Redis list.

Starts its own redis-server and, on it, moves N items through:

- the queue: `enqueue_batch` in batches of 100 (the shape of an ImageBatch) spread over
  tenants of both tiers and all priorities in the shared pool, then `lease` + `complete`
  for each item;
- a bare list: LPUSH of 100 items per call, then BRPOP for each item.

Both run with the same number of concurrent consumers on one client. Prints items/s per
phase and overall for both, and the ratio bare / queue (how many times slower the queue is).

    .venv/bin/python bench/queue_throughput.py [--items 20000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import pathlib
import tempfile
import time

import redis.asyncio as aioredis

from imagegen.api import imagebatch, tenant
from imagegen.localcluster import redis as localredis
from imagegen.queue import core, keys, model

BATCH_SIZE = 100
TENANTS: tuple[tuple[str, tenant.Tier, int], ...] = (
    ("premium", "priority", 1),
    ("acme", "standard", 2),
    ("globex", "standard", 1),
    ("initech", "standard", 1),
)
PRIORITIES: tuple[imagebatch.Priority, ...] = ("high", "normal", "low")
BARE_LIST = "bench:bare"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    name: str
    items: int
    enqueue_seconds: float
    consume_seconds: float

    @property
    def per_second(self) -> float:
        return self.items / (self.enqueue_seconds + self.consume_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        server = localredis.start(workdir=pathlib.Path(scratch))
        try:
            runs = asyncio.run(measure(url=server.url, items=args.items, workers=args.workers))
        finally:
            server.stop()
    report(runs, workers=args.workers)


async def measure(*, url: str, items: int, workers: int) -> tuple[Run, Run]:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
        bare = await run_bare(client=client, items=items, workers=workers)
        await client.flushdb()
        queued = await run_queue(client=client, items=items, workers=workers)
    finally:
        await client.aclose()
    return bare, queued


async def run_bare(*, client: aioredis.Redis, items: int, workers: int) -> Run:
    payload = b'{"prompt":"a lighthouse at dawn","seed":7,"size":"1024x1024"}'
    started = time.perf_counter()
    for start in range(0, items, BATCH_SIZE):
        await client.lpush(BARE_LIST, *[payload] * min(BATCH_SIZE, items - start))
    enqueued = time.perf_counter()
    claimed = 0

    async def consume() -> None:
        nonlocal claimed
        while claimed < items:
            claimed += 1
            assert await client.brpop([BARE_LIST], timeout=5) is not None

    await asyncio.gather(*(consume() for _ in range(workers)))
    return Run(
        name="LPUSH/BRPOP",
        items=items,
        enqueue_seconds=enqueued - started,
        consume_seconds=time.perf_counter() - enqueued,
    )


async def run_queue(*, client: aioredis.Redis, items: int, workers: int) -> Run:
    queue = core.Queue(redis=client, pool=keys.SHARED)
    started = time.perf_counter()
    for number, start in enumerate(range(0, items, BATCH_SIZE)):
        name, tier, weight = TENANTS[number % len(TENANTS)]
        batch = model.BatchRef(
            uid=f"batch-{number}",
            tenant=name,
            tier=tier,
            priority=PRIORITIES[number % len(PRIORITIES)],
            weight=weight,
        )
        specs = [
            model.ItemSpec(
                id=f"i{n}",
                payload={"prompt": "a lighthouse at dawn", "seed": n, "size": "1024x1024"},
            )
            for n in range(min(BATCH_SIZE, items - start))
        ]
        assert await queue.enqueue_batch(batch=batch, items=specs) == len(specs)
    enqueued = time.perf_counter()
    claimed = 0

    async def consume(worker_id: str) -> None:
        nonlocal claimed
        while claimed < items:
            claimed += 1
            lease = await queue.lease(worker_id=worker_id, wait_seconds=5)
            assert lease is not None
            assert await queue.complete(lease=lease, result={"uri": f"file:///{lease.item_id}"})

    await asyncio.gather(*(consume(f"w{n}") for n in range(workers)))
    return Run(
        name="queue",
        items=items,
        enqueue_seconds=enqueued - started,
        consume_seconds=time.perf_counter() - enqueued,
    )


def report(runs: tuple[Run, Run], *, workers: int) -> None:
    bare, queued = runs
    print(f"{bare.items} items, {workers} consumer(s), one client, same redis-server")
    print(f"{'':12} {'enqueue/s':>12} {'consume/s':>12} {'overall/s':>12}")
    for run in runs:
        print(
            f"{run.name:12} {run.items / run.enqueue_seconds:12,.0f} "
            f"{run.items / run.consume_seconds:12,.0f} {run.per_second:12,.0f}"
        )
    print(f"ratio bare/queue overall: {bare.per_second / queued.per_second:.2f}")
    consume_ratio = queued.consume_seconds / bare.consume_seconds
    print(f"ratio bare/queue consume (lease+ack vs BRPOP): {consume_ratio:.2f}")


if __name__ == "__main__":
    main()
