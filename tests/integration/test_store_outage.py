"""A region's object store down for 30 s in the middle of a batch, with the real operator,
a real worker and the region's real versitygw: the batch waits, then completes with every
image whole and no item failed; the worker counts its failed tries of the store; the
batch's `StoreAvailable` condition says False, naming the region, the store and the
reason, while the store is away, and True once it answers again."""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

import pytest

from imagegen.localcluster import redis, s3server
from tests.integration import batchworld, s3fixtures, waiting, workerproc
from tests.integration.tenantworld import World

pytestmark = pytest.mark.integration

REGION = "us-east"
ITEMS = 30
OUTAGE_SECONDS = 30.0
"""How long the store is down, as the issue asks."""
BATCH_SECONDS = 180.0
STORE_ERRORS = "imagegen_worker_store_errors_total"


def test_a_store_down_for_30_s_mid_batch_delays_it_shows_on_it_and_fails_nothing(
    world: World,
    region_redis: dict[str, redis.LocalRedis],
    region_stores: dict[str, s3server.LocalS3],
    tmp_path: pathlib.Path,
) -> None:
    tenant = batchworld.tenant_in(world, region=REGION, prefix="outage")
    server = region_stores[REGION]
    pool = workerproc.Workers(
        redis_url=region_redis[REGION].url, storage=tmp_path / "scratch",
        logs=tmp_path / "logs", tenant=tenant, region=REGION,
    )  # fmt: skip
    try:
        args = (
            *s3fixtures.worker_args(server), "--concurrency", "2",
            "--simulated-cost-seconds", "0.2", "--lease-seconds", "6",
        )  # fmt: skip
        worker = asyncio.run(pool.start(*args, env=s3fixtures.worker_env(server)))
        name = batchworld.submit(world, tenant=tenant, items=ITEMS)
        waiting.until(
            lambda: succeeded(world, tenant, name) >= 3, timeout=60, what="some images stored"
        )
        errors_before = asyncio.run(
            worker.metric(STORE_ERRORS, region=REGION, reason="Unreachable")
        )

        server.stop()
        stopped_at = time.monotonic()
        try:
            down = waiting.until(
                lambda: store_condition(world, tenant, name, "False"),
                timeout=OUTAGE_SECONDS,
                what="StoreAvailable=False",
            )
            errors_during = waiting.until(
                lambda: rose_above(worker, errors_before),
                timeout=OUTAGE_SECONDS,
                what="the worker counting failed store tries",
            )
            # The outage itself: the store stays away for its full length.
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
            during = batchworld.status(world, tenant=tenant, name=name)
        finally:
            server.restart()

        done = batchworld.wait_phase(
            world, tenant=tenant, name=name, phase="Succeeded", timeout=BATCH_SECONDS
        )
    finally:
        pool.stop_all()

    assert down["reason"] == "Unreachable"
    assert f"region {REGION}" in down["message"]
    assert f"s3://{server.bucket} at {server.endpoint}" in down["message"]
    assert errors_during > errors_before
    assert (during.get("counts") or {}).get("failed", 0) == 0
    assert during["phase"] != "Succeeded"
    assert (done["counts"]["succeeded"], done["counts"]["failed"]) == (ITEMS, 0)
    back = batchworld.condition(done, "StoreAvailable")
    assert back is not None
    assert (back["status"], back["reason"]) == ("True", "Stored")
    uid = batchworld.batch(world, tenant=tenant, name=name)["metadata"]["uid"]
    keys = [f"{tenant}/{uid}/{item['id']}.png" for item in done["items"]]
    assert sorted(item["uri"] for item in done["items"]) == sorted(
        f"s3://{server.bucket}/{key}" for key in keys
    )
    assert asyncio.run(s3fixtures.broken_objects(server=server, keys=keys)) == []


def succeeded(world: World, tenant: str, name: str) -> int:
    counts = batchworld.status(world, tenant=tenant, name=name).get("counts") or {}
    return int(counts.get("succeeded", 0))


def store_condition(world: World, tenant: str, name: str, status: str) -> dict[str, Any] | None:
    found = batchworld.condition(
        batchworld.status(world, tenant=tenant, name=name), "StoreAvailable"
    )
    return found if found and found["status"] == status else None


def rose_above(worker: workerproc.WorkerProcess, before: float) -> float | None:
    now = asyncio.run(worker.metric(STORE_ERRORS, region=REGION, reason="Unreachable"))
    return now if now > before else None
