"""Benchmark: webhook deliveries through the outbox against bare HTTP POSTs.

Starts its own redis-server and a receiver on 127.0.0.1, then delivers N events:

- outbox: N `outbox.append` calls (the producer's once-only Lua step), then the
  dispatcher (consumer group, SSRF check, signing, a fresh pinned connection per attempt,
  the settle step) until the receiver has answered all N;
- bare: the same N bodies POSTed by one aiohttp session with keep-alive, unsigned, with the
  dispatcher's concurrency.

Prints appends/s, deliveries/s for both, and the ratio bare / outbox (how many times
slower a durable, signed, guarded delivery is than a bare POST on this machine).

    .venv/bin/python bench/webhook_dispatch.py [--events 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import pathlib
import sys
import tempfile
import time

import aiohttp
import redis.asyncio as aioredis

from imagegen.gateway.webhooks import dispatcher, events, outbox, signing
from imagegen.localcluster import redis as localredis

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tests import builders
from tests.integration import waiting
from tests.integration.webhookreceiver import Receiver

TENANT = "bench"
CONCURRENCY = dispatcher.Options().batch_size


class StaticSecrets:
    """One tenant's signing secret, without an apiserver (not what is measured)."""

    def __init__(self) -> None:
        self.secret = signing.new_secret()

    async def get(self, tenant: str) -> str | None:
        return self.secret if tenant == TENANT else None


def make_events(count: int, url: str) -> list[events.Event]:
    now = datetime.datetime.now(datetime.UTC)
    found = []
    for n in range(count):
        body = builders.succeeded_batch_with_webhook(f"b{n}", tenant=TENANT, url=url)
        found.extend(events.for_batch(body, now=now))
    return found


async def until_received(receiver: Receiver, count: int) -> None:
    async def all_in() -> bool:
        return len(receiver.ok()) >= count

    await waiting.until_async(all_in, seconds=600, interval=0.01, what=f"{count} deliveries")


async def run_outbox(client: aioredis.Redis, receiver: Receiver, count: int) -> tuple[float, float]:
    batch = make_events(count, receiver.url)
    started = time.perf_counter()
    for event in batch:
        await outbox.append(client, event)
    appended = time.perf_counter() - started
    running = dispatcher.Dispatcher(
        redis=client,
        secrets=StaticSecrets(),
        allowlist=["127.0.0.1"],
        consumer="bench",
        options=dispatcher.Options(block_ms=100, retry_poll_seconds=0.05),
    )
    started = time.perf_counter()
    task = asyncio.create_task(running.run())
    await until_received(receiver, count)
    delivered = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return appended, delivered


async def run_bare(receiver: Receiver, count: int) -> float:
    bodies = [event.body for event in make_events(count, receiver.url)]
    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:

        async def post(body: bytes) -> None:
            async with limit, session.post(receiver.url, data=body) as response:
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(post(body) for body in bodies))
        return time.perf_counter() - started


async def bench(port: int, count: int) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=port)
    receiver = Receiver()
    await receiver.start()
    try:
        bare = await run_bare(receiver, count)
        receiver.received.clear()
        appended, delivered = await run_outbox(client, receiver, count)
    finally:
        await receiver.stop()
        await client.aclose()
    print(f"events: {count}, concurrency: {CONCURRENCY}")
    print(f"outbox appends:       {count / appended:10.0f} /s")
    print(f"outbox deliveries:    {count / delivered:10.0f} /s  ({delivered:.2f} s)")
    print(f"bare POSTs:           {count / bare:10.0f} /s  ({bare:.2f} s)")
    print(f"ratio bare / outbox:  {delivered / bare:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        server = localredis.start(workdir=pathlib.Path(scratch))
        try:
            asyncio.run(bench(server.port, args.events))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
