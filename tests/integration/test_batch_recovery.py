"""Batches through faults, with the real operator, real workers and real redis-servers:
a region's Redis losing its data mid-batch, a failover whose old region comes back, a
Tenant deleted under its batches; and what following a batch costs the apiserver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import redis
from lightkube.resources import core_v1
from prometheus_client.parser import text_string_to_metric_families

from imagegen import resources
from imagegen.localcluster import cluster
from imagegen.localcluster import redis as localredis
from tests import builders
from tests.integration import apiobjects, operatorproc, tenantworld, waiting, workerproc
from tests.integration.tenantworld import World, unique_name

REGION = "us-east"
STANDBY = "eu-west"


def new_tenant(world: World, *regions: str) -> str:
    name = unique_name("recovery")
    world.create(tenantworld.new_tenant(name, *regions).obj())
    world.wait_reconciled(name)
    return name


def submit(world: World, tenant: str, items: int) -> tuple[str, str]:
    """(name, uid) of a new batch of `items` small images."""
    name = unique_name("batch")
    made = world.create(
        builders.make_batch(name, tenant=tenant).namespace(f"tenant-{tenant}")
        .items(items, size="64x64").obj()
    )  # fmt: skip
    return name, made["metadata"]["uid"]


def status_of(world: World, tenant: str, name: str) -> dict[str, Any]:
    found = world.kube.get(resources.ImageBatch, name, namespace=f"tenant-{tenant}").to_dict()
    status: dict[str, Any] = found.get("status") or {}
    return status


def wait_phase(world: World, tenant: str, name: str, phase: str, timeout: float) -> dict[str, Any]:
    """The batch's status once it reads `phase`."""
    return waiting.until(
        lambda: (s := status_of(world, tenant, name)).get("phase") == phase and s,
        timeout=timeout, what=f"{name} {phase}",
    )  # fmt: skip


def run_workers(
    storage: pathlib.Path, redis_url: str, tenant: str, region: str, *args: str
) -> workerproc.Workers:
    pool = workerproc.Workers(
        redis_url=redis_url, storage=storage, logs=storage.parent / "logs", tenant=tenant,
        region=region,
    )  # fmt: skip
    asyncio.run(pool.start("--concurrency", "2", "--lease-seconds", "5", *args))
    return pool


def keys_of(server: localredis.LocalRedis, uid: str) -> list[bytes]:
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
    try:
        return list(client.scan_iter(match=f"*{uid}*"))
    finally:
        client.close()


def batch_events(world: World, tenant: str, name: str) -> list[core_v1.Event]:
    return [
        event
        for event in world.kube.list(core_v1.Event, namespace=f"tenant-{tenant}")
        if event.involvedObject.name == name and event.involvedObject.kind == "ImageBatch"
    ]


def counter(operator: operatorproc.OperatorProcess, name: str, **labels: str) -> float:
    """A counter's value in the operator's /metrics (0 when the series is absent)."""
    url = f"http://{operator.metrics_address}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@contextlib.contextmanager
def frozen(server: localredis.LocalRedis) -> Iterator[None]:
    """The region's Redis stopped in its tracks (SIGSTOP), its data kept: to the operator
    it is as unreachable as a cut network, and it answers again as it was (SIGCONT)."""
    os.killpg(server.child.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(server.child.pid, signal.SIGCONT)


def test_a_region_redis_that_loses_its_data_mid_batch_gets_the_batch_again_and_it_ends(
    world: World,
    region_redis: dict[str, localredis.LocalRedis],
    running_operator: operatorproc.OperatorProcess,
    tmp_path: pathlib.Path,
) -> None:
    tenant = new_tenant(world, REGION)
    storage = tmp_path / "out"
    server = region_redis[REGION]
    pool = run_workers(storage, server.url, tenant, REGION, "--simulated-cost-seconds", "0.3")
    samples: list[dict[str, Any]] = []

    def sampled(predicate: Any) -> dict[str, Any] | None:
        status = status_of(world, tenant, name)
        samples.append(status)
        return status if predicate(status) else None

    try:
        name, _ = submit(world, tenant, 40)
        waiting.until(
            lambda: sampled(lambda s: (s.get("counts") or {}).get("succeeded", 0) >= 8),
            timeout=90, what="a fifth of the batch done",
        )  # fmt: skip
        redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5).flushall()
        done = waiting.until(
            lambda: sampled(lambda s: s.get("phase") == "Succeeded"),
            timeout=120, what="the batch Succeeded after the data loss",
        )  # fmt: skip
    finally:
        pool.stop_all()

    assert done["counts"] == {"total": 40, "queued": 0, "running": 0, "succeeded": 40, "failed": 0}
    assert len({item["id"] for item in done["items"]}) == 40
    assert len(list(storage.rglob("*.png"))) == 40
    finished = [(s.get("counts") or {}).get("succeeded", 0) for s in samples]
    assert finished == sorted(finished), f"status went backwards: {finished}"
    assert {s["counts"]["total"] for s in samples if "counts" in s} == {40}
    warnings = [e for e in batch_events(world, tenant, name) if e.reason == "QueueDataLost"]
    assert warnings, "no QueueDataLost Event"
    assert warnings[0].type == "Warning"
    assert "missing from region us-east's queue" in (warnings[0].message or "")
    lost = counter(
        running_operator, "imagegen_batch_queue_data_lost_total", tenant=tenant, region=REGION
    )
    assert lost >= 1


def test_a_failed_over_batch_has_its_leftovers_cancelled_when_the_old_region_answers(
    world: World,
    region_redis: dict[str, localredis.LocalRedis],
    running_operator: operatorproc.OperatorProcess,
    tmp_path: pathlib.Path,
) -> None:
    tenant = new_tenant(world, REGION, STANDBY)
    storage = tmp_path / "out"
    name, uid = submit(world, tenant, 10)
    # No workers in us-east: its 10 items wait there, as in a region cut off from the
    # operator alone, and come back with it.
    assert wait_phase(world, tenant, name, "Queued", timeout=60)["region"] == REGION
    standby = run_workers(storage, region_redis[STANDBY].url, tenant, STANDBY)
    try:
        with frozen(region_redis[REGION]):
            moved = waiting.until(
                lambda: (s := status_of(world, tenant, name)).get("region") == STANDBY and s,
                timeout=150, what="the batch failed over to eu-west",
            )  # fmt: skip
            # (Its 10 images can only come from eu-west's workers: us-east has none.)
            assert moved["enqueuedRegions"] == [REGION, STANDBY]
        waiting.until(
            lambda: keys_of(region_redis[REGION], uid) == [], timeout=60,
            what="the batch's leftovers in us-east cancelled and released",
        )  # fmt: skip
        done = wait_phase(world, tenant, name, "Succeeded", timeout=90)
    finally:
        standby.stop_all()
    assert done["counts"]["succeeded"] == 10
    assert len(list(storage.rglob("*.png"))) == 10
    cancelled = counter(
        running_operator, "imagegen_batch_leftover_items_cancelled_total",
        tenant=tenant, region=REGION,
    )  # fmt: skip
    assert cancelled == 10
    assert [e.reason for e in batch_events(world, tenant, name)].count("FailedOver") == 1


def test_deleting_a_tenant_cancels_its_queued_batch_which_can_still_be_deleted(
    world: World, region_redis: dict[str, localredis.LocalRedis]
) -> None:
    tenant = new_tenant(world, REGION)
    name, uid = submit(world, tenant, 5)
    wait_phase(world, tenant, name, "Queued", timeout=60)
    assert keys_of(region_redis[REGION], uid)

    world.kube.delete(resources.Tenant, tenant)

    cancelled = wait_phase(world, tenant, name, "Cancelled", timeout=60)
    assert cancelled["counts"]["succeeded"] == 0
    reasons = {(e.type, e.reason) for e in batch_events(world, tenant, name)}
    assert ("Warning", "TenantDeleted") in reasons
    waiting.until(
        lambda: keys_of(region_redis[REGION], uid) == [], timeout=30, what="queue keys released"
    )
    world.kube.delete(resources.ImageBatch, name, namespace=f"tenant-{tenant}")

    waiting.until(
        lambda: apiobjects.absent(world.kube, resources.ImageBatch, name, f"tenant-{tenant}"),
        timeout=60,
        what="the batch deleted with its Tenant gone",
    )


def test_following_a_batch_reads_its_tenant_once_not_on_every_tick(
    world: World,
    region_redis: dict[str, localredis.LocalRedis],
    management: cluster.LocalCluster,
    tmp_path: pathlib.Path,
) -> None:
    tenant = new_tenant(world, REGION)
    pool = run_workers(
        tmp_path / "out",
        region_redis[REGION].url,
        tenant,
        REGION,
        "--simulated-cost-seconds",
        "0.5",
    )
    before = len(tenantworld.operator_requests(management))
    try:
        started = time.monotonic()
        name, _ = submit(world, tenant, 20)
        wait_phase(world, tenant, name, "Succeeded", timeout=90)
        seconds = time.monotonic() - started
    finally:
        pool.stop_all()
    requests = tenantworld.operator_requests(management)[before:]
    tenant_reads = [
        e for e in requests
        if e["verb"] == "get" and e["objectRef"].get("resource") == "tenants"
        and e["objectRef"].get("name") == tenant
    ]  # fmt: skip
    writes = tenantworld.writes_to(requests, name)
    print(f"{seconds:.1f} s followed: {len(tenant_reads)} Tenant GET(s), {len(writes)} writes")
    # 20 items at 0.5 s on 2 slots: 5 s or more; polling every 0.25 s read it 20+ times.
    assert seconds >= 5
    assert len(tenant_reads) <= 1
    assert 0 < len(writes) <= 15
