"""ImageBatches end to end: the real operator admits and dispatches, real worker
processes generate PNGs from a real Redis, and the status follows."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import time
from collections.abc import Iterator
from typing import Any

import lightkube
import pytest
import redis.asyncio as aioredis
from lightkube.types import PatchType
from PIL import Image

from imagegen import resources
from imagegen.localcluster import cluster, redis
from tests import builders
from tests.integration import operatorproc, tenantworld, waiting, workerproc
from tests.integration.tenantworld import World, unique_name

REGION = "us-east"


@pytest.fixture
def world(
    kube: lightkube.Client,
    regions: dict[str, cluster.LocalCluster],
    running_operator: operatorproc.OperatorProcess,
) -> Iterator[World]:
    yield World(kube=kube, regions=regions)
    assert "Traceback" not in running_operator.log(), running_operator.log()[-4000:]


def workers(
    *, redis_url: str, tenant: str, storage: pathlib.Path, region: str = REGION
) -> workerproc.Workers:
    """Workers of the tenant's dedicated pool, as its Deployment would run them."""
    return workerproc.Workers(
        redis_url=redis_url, storage=storage, logs=storage.parent / "logs", tenant=tenant,
        region=region,
    )  # fmt: skip


def start(pool: workerproc.Workers, count: int, *args: str) -> None:
    for _ in range(count):
        asyncio.run(pool.start("--concurrency", "4", "--lease-seconds", "5", *args))


def tenant_in_one_region(world: World, **quota: int) -> str:
    name = unique_name("batches")
    tenant = builders.make_tenant(name).tier("priority").namespace(f"tenant-{name}")
    world.create(
        tenant.regions(REGION).quota(**quota).obj() if quota else tenant.regions(REGION).obj()
    )
    world.wait_reconciled(name)
    return name


def submit(world: World, owner: str, items: int, **spec: Any) -> str:
    """Create a batch of `items` small images in the owner's namespace; spec overrides."""
    name = unique_name("batch")
    batch = (
        builders.make_batch(name, tenant=owner)
        .namespace(f"tenant-{owner}")
        .items(items, size="64x64")
    )
    obj = batch.obj()
    obj["spec"].update(spec)
    world.create(obj)
    return name


def batch_status(world: World, tenant: str, name: str) -> dict[str, Any]:
    found = world.kube.get(resources.ImageBatch, name, namespace=f"tenant-{tenant}").to_dict()
    status: dict[str, Any] = found.get("status") or {}
    return status


def wait_phase(
    world: World, tenant: str, name: str, phase: str, timeout: float = 90
) -> dict[str, Any]:
    return waiting.until(
        lambda: (s := batch_status(world, tenant, name)).get("phase") == phase and s,
        timeout=timeout,
        what=f"{name} {phase}",
    )


@pytest.fixture
def storage(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "out"


def test_a_100_image_batch_succeeds_with_100_pngs_and_few_status_writes(
    world: World,
    region_redis: dict[str, redis.LocalRedis],
    management: cluster.LocalCluster,
    storage: pathlib.Path,
) -> None:
    tenant = tenant_in_one_region(world)
    pool = workers(redis_url=region_redis[REGION].url, tenant=tenant, storage=storage)
    start(pool, 2)
    try:
        name = submit(world, tenant, 100)
        done = wait_phase(world, tenant, name, "Succeeded")
    finally:
        pool.stop_all()
    assert done["counts"] == {
        "total": 100,
        "queued": 0,
        "running": 0,
        "succeeded": 100,
        "failed": 0,
    }
    assert done["progress"] == "100/100"
    assert done["region"] == REGION
    assert done["slaMet"] is True
    files = sorted(storage.rglob("*.png"))
    assert len(files) == 100
    with Image.open(files[0]) as image:
        assert image.size == (64, 64)
    assert all(item["uri"].startswith("file://") for item in done["items"])
    writes = [
        e
        for e in tenantworld.operator_requests(management)
        if e["verb"] == "patch"
        and e["objectRef"].get("resource") == "imagebatches"
        and e["objectRef"].get("name") == name
    ]
    assert 0 < len(writes) <= 20


def test_an_unknown_tenant_is_rejected_naming_spec_tenant(world: World) -> None:
    owner = tenant_in_one_region(world)
    name = submit(world, owner, 1, tenant="nobody-" + owner[:20])
    rejected = wait_phase(world, owner, name, "Rejected")
    assert rejected["message"].startswith("spec.tenant:")
    assert rejected["conditions"][0]["reason"] == "TenantNotFound"


def test_a_batch_over_quota_is_rejected_and_stays_visible(world: World) -> None:
    owner = tenant_in_one_region(world, max_batch_size=5)
    name = submit(world, owner, 6)
    rejected = wait_phase(world, owner, name, "Rejected")
    assert "maxBatchSize" in rejected["message"]
    time.sleep(2)
    assert batch_status(world, owner, name)["phase"] == "Rejected"


def test_spec_cancel_stops_a_queued_batch_and_keeps_it(world: World) -> None:
    owner = tenant_in_one_region(world)
    name = submit(world, owner, 10)
    wait_phase(world, owner, name, "Queued")
    world.kube.patch(
        resources.ImageBatch, name, {"spec": {"cancel": True}},
        namespace=f"tenant-{owner}", patch_type=PatchType.MERGE,
    )  # fmt: skip
    cancelled = wait_phase(world, owner, name, "Cancelled")
    assert cancelled["counts"]["succeeded"] == 0


def test_a_deadline_passed_is_recorded_while_work_goes_on(world: World) -> None:
    owner = unique_name("late")
    world.create(
        builders.make_tenant(owner).namespace(f"tenant-{owner}").regions(REGION)
        .sla(batch_deadline_seconds=10).obj()
    )  # fmt: skip
    world.wait_reconciled(owner)
    name = submit(world, owner, 2)

    def breached() -> dict[str, Any] | None:
        status = batch_status(world, owner, name)
        sla = [c for c in status.get("conditions", []) if c["type"] == "SLAMet"]
        return status if sla and sla[0]["reason"] == "SLAExceeded" else None

    status = waiting.until(breached, timeout=30, what="SLA exceeded")
    assert status["phase"] == "Queued"


def test_an_operator_restarted_mid_batch_carries_on_without_enqueueing_twice(
    world: World,
    region_redis: dict[str, redis.LocalRedis],
    running_operator: operatorproc.OperatorProcess,
    storage: pathlib.Path,
) -> None:
    tenant = tenant_in_one_region(world)
    pool = workers(redis_url=region_redis[REGION].url, tenant=tenant, storage=storage)
    name = submit(world, tenant, 30)
    wait_phase(world, tenant, name, "Queued")
    running_operator.stop(sig=signal.SIGKILL)
    running_operator.start()
    start(pool, 1, "--simulated-cost-seconds", "0.05")
    try:
        done = wait_phase(world, tenant, name, "Succeeded")
    finally:
        pool.stop_all()
    assert done["counts"]["total"] == 30
    assert len(list(storage.rglob("*.png"))) == 30


def test_a_batch_fails_over_when_its_region_and_redis_go_away(
    world: World,
    regions: dict[str, cluster.LocalCluster],
    region_redis: dict[str, redis.LocalRedis],
    storage: pathlib.Path,
) -> None:
    owner = unique_name("failover")
    world.create(
        builders.make_tenant(owner).tier("priority").namespace(f"tenant-{owner}")
        .regions(REGION, "eu-west").obj()
    )  # fmt: skip
    world.wait_reconciled(owner)
    standby = workers(
        redis_url=region_redis["eu-west"].url, tenant=owner, storage=storage, region="eu-west"
    )
    name = submit(world, owner, 10)
    assert wait_phase(world, owner, name, "Queued")["region"] == REGION  # no workers there
    region_redis[REGION].stop()
    regions[REGION].stop_apiserver()
    start(standby, 1)
    try:
        done = wait_phase(world, owner, name, "Succeeded", timeout=120)
    finally:
        standby.stop_all()
        region_redis[REGION].restart()
        regions[REGION].start_apiserver()
    assert done["region"] == "eu-west"
    failed_over = [c for c in done["conditions"] if c["type"] == "FailedOver"]
    assert failed_over[0]["status"] == "True"
    assert "10 unfinished item(s) moved to eu-west" in failed_over[0]["message"]
    assert len(list(storage.rglob("*.png"))) == 10


def test_items_failing_at_the_provider_leave_a_partial_success_with_their_errors(
    world: World, region_redis: dict[str, redis.LocalRedis], storage: pathlib.Path
) -> None:
    owner = tenant_in_one_region(world)
    name = unique_name("partial")
    obj = builders.make_batch(name, tenant=owner).namespace(f"tenant-{owner}").items(
        3, size="64x64"
    ).item("huge", size="9000x9000").obj()  # fmt: skip
    world.create(obj)
    pool = workers(redis_url=region_redis[REGION].url, tenant=owner, storage=storage)
    start(pool, 1)
    try:
        done = wait_phase(world, owner, name, "PartiallySucceeded")
    finally:
        pool.stop_all()
    assert done["counts"]["succeeded"] == 3
    assert done["counts"]["failed"] == 1
    (huge,) = [item for item in done["items"] if item["id"] == "huge"]
    assert huge["state"] == "Failed"
    assert huge["error"]
    assert "1 of 4 item(s) failed" in done["message"]


def test_deleting_a_batch_removes_its_queued_items(
    world: World, region_redis: dict[str, redis.LocalRedis]
) -> None:
    owner = tenant_in_one_region(world)
    name = submit(world, owner, 5)
    uid = world.kube.get(resources.ImageBatch, name, namespace=f"tenant-{owner}").metadata.uid
    wait_phase(world, owner, name, "Queued")
    world.kube.delete(resources.ImageBatch, name, namespace=f"tenant-{owner}")

    async def cancelled() -> bool:
        # Deletion cancels the queued items and then forgets the batch: none of its keys
        # is left in the region's Redis.
        client = aioredis.Redis.from_url(region_redis[REGION].url)
        try:
            left = [key async for key in client.scan_iter(match=f"*{uid}*")]
        finally:
            await client.aclose()
        return left == []

    waiting.until(
        lambda: asyncio.run(cancelled()), timeout=90, what="the batch's queue keys removed"
    )
