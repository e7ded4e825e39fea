"""Benchmark: GCRA rate-limit decisions per second against the `limits` library's Redis
moving-window strategy, in the same run on the same redis-server, plus accuracy.

- Throughput: D decisions for one key, from C concurrent callers on one client each way.
  GCRA is one EVALSHA of a few commands on one string; the moving window keeps a list of
  hit timestamps per key (its own Lua).
- Accuracy under real time: callers send at 10x a limit of R per minute (burst B) for S
  seconds; the ideal admitted count is B + R*S/60; prints how far GCRA's count is from it.

    .venv/bin/python bench/ratelimit.py [--decisions 20000] [--concurrency 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import tempfile
import time
from collections.abc import Awaitable, Callable

import limits
import redis.asyncio as aioredis
from limits.aio import strategies
from limits.storage import storage_from_string

from imagegen import ratelimit
from imagegen.localcluster import redis as localredis

BIG = 10_000_000
"""A limit no run reaches, so that every decision is a full admit path."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--per-minute", type=int, default=6000)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        server = localredis.start(workdir=pathlib.Path(scratch))
        try:
            asyncio.run(run(args, url=server.url))
        finally:
            server.stop()


async def run(args: argparse.Namespace, *, url: str) -> None:
    client = aioredis.Redis.from_url(url)
    storage = storage_from_string(f"async+{url}")
    await client.flushdb()
    gcra = ratelimit.RateLimiter(redis=client)
    gcra_limit = [ratelimit.Limit(key="{bench}:gcra", per_minute=BIG, burst=BIG)]
    window = strategies.MovingWindowRateLimiter(storage)  # type: ignore[arg-type]
    item = limits.RateLimitItemPerMinute(BIG)

    async def gcra_decide() -> bool:
        return (await gcra.decide(gcra_limit)).admitted

    async def window_decide() -> bool:
        return await window.hit(item, "bench")

    try:
        window_rate = await throughput(window_decide, args.decisions, args.concurrency)
        gcra_rate = await throughput(gcra_decide, args.decisions, args.concurrency)
        print(f"{args.decisions} decisions, {args.concurrency} concurrent callers, one key")
        print(f"  limits moving window: {window_rate:>9.0f} decisions/s")
        print(f"  GCRA (one EVALSHA):   {gcra_rate:>9.0f} decisions/s")
        print(f"  GCRA / moving window: {gcra_rate / window_rate:.2f}x")
        await accuracy(gcra, args)
    finally:
        await client.aclose()


async def throughput(
    decide: Callable[[], Awaitable[bool]], decisions: int, concurrency: int
) -> float:
    for _ in range(200):
        await decide()
    remaining = iter(range(decisions))

    async def caller() -> None:
        for _ in remaining:
            await decide()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return decisions / (time.perf_counter() - started)


async def accuracy(gcra: ratelimit.RateLimiter, args: argparse.Namespace) -> None:
    """Offer 10x the rate for args.seconds of wall time, paced; count what is admitted."""
    limit = [ratelimit.Limit(key="{bench}:accuracy", per_minute=args.per_minute,
                             burst=args.burst)]  # fmt: skip
    offered_per_second = 10 * args.per_minute / 60
    admitted = sent = 0
    started = time.time()
    while (elapsed := time.time() - started) < args.seconds:
        due = int(elapsed * offered_per_second) + 1
        while sent < due:
            admitted += (await gcra.decide(limit)).admitted
            sent += 1
        await asyncio.sleep(0.001)
    duration = time.time() - started
    ideal = args.burst + duration * args.per_minute / 60
    print(
        f"accuracy at 10x overload ({args.per_minute}/min, burst {args.burst},"
        f" {duration:.1f} s): offered {sent}, admitted {admitted}, ideal {ideal:.1f},"
        f" error {100 * (admitted - ideal) / ideal:+.2f} %"
    )


if __name__ == "__main__":
    main()
