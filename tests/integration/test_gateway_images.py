"""Images in each region's real S3-compatible store (versitygw), served by the gateway: a
100-image batch lands as 100 objects with metadata; every image read through the gateway
(the presigned redirect followed, and streamed) is byte-identical to the object; the zip
holds them all; another tenant gets 404. Retention: the TTL deletes the batch, its
objects and its queue keys; a batch deleted while its store is down is cleaned by the
sweep once the store is back."""

from __future__ import annotations

import asyncio
import hashlib
import io
import pathlib
import time
import zipfile
from collections.abc import Iterator

import httpx
import pytest
import redis as redis_py
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.controller import cleanup
from imagegen.localcluster import operatorsetup, redis, s3server, stack
from imagegen.storage import base as storage_base
from imagegen.storage import stores
from tests.integration import (
    apiobjects,
    clientexamples,
    gatewayproc,
    operatorproc,
    s3fixtures,
    waiting,
    workerproc,
)
from tests.integration.conftest import GATEWAY_REDIS_DB
from tests.integration.gatewayworld import GatewayWorld, items

pytestmark = pytest.mark.integration

REGION = "us-east"
BATCH_SECONDS = 300
CLEANUP_BOUND_SECONDS = 30
"""A batch deleted while its store is down is gone from the apiserver within this (each
region's cleanup is cut off after cleanup.CALL_SECONDS), and its objects within this of
the store's return (the sweep runs every CLEANUP_SWEEP_SECONDS)."""


@pytest.fixture(scope="module")
def s3_gateways(
    local_stack: stack.LocalStack,
    operator_setup: operatorsetup.OperatorSetup,
    running_operator: operatorproc.OperatorProcess,
    redis_server: redis.LocalRedis,
    region_stores: dict[str, s3server.LocalS3],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, gatewayproc.GatewayProcess]]:
    """Two gateways reading the regions' stores: one redirects to presigned URLs, one
    streams."""
    started: dict[str, gatewayproc.GatewayProcess] = {}
    workdir = tmp_path_factory.mktemp("s3-gateways")
    kubeconfig = gatewayproc.service_account_kubeconfig(
        management=local_stack.management, workdir=workdir
    )
    credentials = s3fixtures.credentials_dir(folder=workdir / "credentials", servers=region_stores)
    stores = {
        name: server.config().model_dump(mode="json", exclude_defaults=True)
        for name, server in region_stores.items()
    }
    try:
        for delivery in ("redirect", "stream"):
            gateway = gatewayproc.GatewayProcess(
                kubeconfig=kubeconfig,
                redis_url=f"redis://127.0.0.1:{redis_server.port}/{GATEWAY_REDIS_DB}",
                workdir=workdir / delivery,
                extra_settings={
                    "stores": stores,
                    "store_credentials_dir": str(credentials),
                    "image_delivery": delivery,
                    "webhooks_enabled": False,
                },
            )
            gateway.start()
            started[delivery] = gateway
        yield started
    finally:
        for gateway in started.values():
            gateway.stop()


@pytest.fixture
def gw(gateway_world: GatewayWorld) -> GatewayWorld:
    return gateway_world


@pytest.fixture
def tenant_with_s3_workers(
    gw: GatewayWorld,
    region_redis: dict[str, redis.LocalRedis],
    region_stores: dict[str, s3server.LocalS3],
    tmp_path: pathlib.Path,
) -> Iterator[tuple[str, str]]:
    """A tenant the gateway knows, with two workers storing into its region's store."""
    # Each image is read three ways below: room for a few hundred requests at once.
    name, key = gw.ready_tenant("s3", requests_per_minute=6000, burst=1000)
    server = region_stores[REGION]
    pool = workerproc.Workers(
        redis_url=region_redis[REGION].url, storage=tmp_path / "scratch",
        logs=tmp_path / "logs", tenant=name, region=REGION,
    )  # fmt: skip
    args = (*s3fixtures.worker_args(server), "--concurrency", "8", "--lease-seconds", "5")
    env = s3fixtures.worker_env(server)
    try:
        for _ in range(2):
            asyncio.run(pool.start(*args, env=env))
        yield name, key
    finally:
        pool.stop_all()


def submit_and_wait(gw: GatewayWorld, tenant: str, key: str, count: int, **spec: object) -> str:
    with gw.client(key) as http:
        answer = http.post("/api/v1/batch/generate", json={"items": items(count)})
        assert answer.status_code == 202, answer.text
        batch_id = str(answer.json()["id"])
    if spec:
        gw.world.kube.patch(
            resources.ImageBatch, batch_id, {"spec": spec}, namespace=f"tenant-{tenant}",
            patch_type=PatchType.MERGE,
        )  # fmt: skip
    waiting.until(
        lambda: (gw.batch(tenant, batch_id).get("status") or {}).get("phase") == "Succeeded",
        timeout=BATCH_SECONDS,
        what=f"batch {batch_id} succeeded",
    )
    return batch_id


def object_bytes(server: s3server.LocalS3, tenant: str, uid: str) -> dict[str, bytes]:
    folder = server.object_path(f"{tenant}/{uid}")
    if not folder.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


async def object_heads(
    server: s3server.LocalS3, keys: list[str]
) -> list[storage_base.StoredObject | None]:
    """Each object's type and metadata, as the S3 API returns them."""
    async with stores.open_store(
        config=server.config(), credentials=s3fixtures.credentials(server)
    ) as store:
        return [await store.head(key=key) for key in keys]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_100_image_batch_lands_in_its_regions_store_and_is_served_identically(
    gw: GatewayWorld,
    tenant_with_s3_workers: tuple[str, str],
    s3_gateways: dict[str, gatewayproc.GatewayProcess],
    region_stores: dict[str, s3server.LocalS3],
) -> None:
    tenant, key = tenant_with_s3_workers
    batch_id = submit_and_wait(gw, tenant, key, 100)
    obj = gw.batch(tenant, batch_id)
    uid = obj["metadata"]["uid"]
    stored = object_bytes(region_stores[REGION], tenant, uid)
    assert sorted(stored) == sorted(f"item-{n}.png" for n in range(100))
    results = {item["id"]: item for item in obj["status"]["items"]}
    assert all(r["uri"] == f"s3://images/{tenant}/{uid}/{i}.png" for i, r in results.items())
    heads = asyncio.run(
        object_heads(region_stores[REGION], [f"{tenant}/{uid}/{n}" for n in stored])
    )
    for name, found in zip(stored, heads, strict=True):
        assert found is not None, name
        assert found.content_type == "image/png"
        assert found.metadata["sha256"] == sha(stored[name])
        assert (found.metadata["tenant"], found.metadata["batch"]) == (tenant, uid)
        assert found.metadata["item"] + ".png" == name
        assert found.metadata["provider"] == "local"
    headers = {"Authorization": f"Bearer {key}"}

    redirect = s3_gateways["redirect"]
    stream = s3_gateways["stream"]
    with (
        httpx.Client(base_url=redirect.url, headers=headers, timeout=30) as via_redirect,
        httpx.Client(base_url=stream.url, headers=headers, timeout=30) as via_stream,
        httpx.Client(timeout=30) as anonymous,
    ):
        listed = via_redirect.get(f"/api/v1/batches/{batch_id}/images")
        assert listed.status_code == 200, listed.text
        entries = listed.json()["data"]
        assert len(entries) == 100
        for entry in entries:
            expected = stored[entry["file_name"]]
            moved = via_redirect.get(entry["image"])
            assert moved.status_code == 302, moved.text
            assert moved.headers["location"].startswith(region_stores[REGION].endpoint)
            fetched = anonymous.get(moved.headers["location"])
            assert fetched.status_code == 200
            assert sha(fetched.content) == sha(expected)
            streamed = via_stream.get(entry["image"])
            assert streamed.status_code == 200
            assert streamed.headers["content-type"] == "image/png"
            assert sha(streamed.content) == sha(expected)
        archive = via_stream.get(listed.json()["archive"])
        assert archive.status_code == 200
        assert archive.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
            assert sorted(opened.namelist()) == sorted(stored)
            assert all(sha(opened.read(name)) == sha(stored[name]) for name in stored)


def test_the_polling_examples_save_each_image_through_the_presigned_redirect(
    tenant_with_s3_workers: tuple[str, str],
    s3_gateways: dict[str, gatewayproc.GatewayProcess],
    tmp_path: pathlib.Path,
) -> None:
    _, key = tenant_with_s3_workers
    env = {"IMAGEGEN_URL": s3_gateways["redirect"].url, "IMAGEGEN_API_KEY": key}
    saved = {}
    for language, argv in (
        ("python", clientexamples.python("follow_polling")),
        ("typescript", clientexamples.node("follow_polling")),
    ):
        folder = tmp_path / language
        folder.mkdir()
        clientexamples.run(argv, env=env, cwd=folder)
        saved[language] = len(clientexamples.saved_images(folder))

    assert saved == {"python": 5, "typescript": 5}


def test_another_tenants_key_gets_404_for_list_image_and_zip(
    gw: GatewayWorld,
    tenant_with_s3_workers: tuple[str, str],
    s3_gateways: dict[str, gatewayproc.GatewayProcess],
) -> None:
    tenant, key = tenant_with_s3_workers
    batch_id = submit_and_wait(gw, tenant, key, 2)
    _, other_key = gw.ready_tenant("s3other")
    with httpx.Client(
        base_url=s3_gateways["redirect"].url,
        headers={"Authorization": f"Bearer {other_key}"},
        timeout=30,
    ) as other:
        for path in ("images", "images/item-0", "images.zip"):
            answer = other.get(f"/api/v1/batches/{batch_id}/{path}")
            assert answer.status_code == 404, (path, answer.text)


def test_the_ttl_deletes_the_batch_its_objects_and_its_queue_keys(
    gw: GatewayWorld,
    tenant_with_s3_workers: tuple[str, str],
    region_stores: dict[str, s3server.LocalS3],
    region_redis: dict[str, redis.LocalRedis],
) -> None:
    tenant, key = tenant_with_s3_workers
    batch_id = submit_and_wait(gw, tenant, key, 5, ttlSecondsAfterFinished=3)
    uid = gw.batch(tenant, batch_id)["metadata"]["uid"]
    assert len(object_bytes(region_stores[REGION], tenant, uid)) == 5

    waiting.until(
        lambda: apiobjects.absent(
            gw.world.kube, resources.ImageBatch, batch_id, namespace=f"tenant-{tenant}"
        ),
        timeout=60,
        what="the batch deleted after its TTL",
    )

    assert object_bytes(region_stores[REGION], tenant, uid) == {}
    assert queue_keys(region_redis[REGION], tenant, uid) == []


def test_a_batch_deleted_while_its_store_is_down_is_cleaned_by_the_sweep(
    gw: GatewayWorld,
    tenant_with_s3_workers: tuple[str, str],
    region_stores: dict[str, s3server.LocalS3],
    region_redis: dict[str, redis.LocalRedis],
) -> None:
    tenant, key = tenant_with_s3_workers
    batch_id = submit_and_wait(gw, tenant, key, 3)
    uid = gw.batch(tenant, batch_id)["metadata"]["uid"]
    server = region_stores[REGION]
    server.stop()
    try:
        began = time.monotonic()
        gw.world.kube.delete(resources.ImageBatch, batch_id, namespace=f"tenant-{tenant}")
        waiting.until(
            lambda: apiobjects.absent(
                gw.world.kube, resources.ImageBatch, batch_id, namespace=f"tenant-{tenant}"
            ),
            timeout=CLEANUP_BOUND_SECONDS,
            what="the batch deleted while its store is down",
        )
        assert time.monotonic() - began < CLEANUP_BOUND_SECONDS
        assert len(object_bytes(server, tenant, uid)) == 3
        pending = gw.world.kube.get(
            core_v1.ConfigMap, cleanup.PENDING, namespace=operatorsetup.NAMESPACE
        )
        assert f"{REGION}.{tenant}.{uid}" in (pending.data or {})
    finally:
        server.restart()
    waiting.until(
        lambda: object_bytes(server, tenant, uid) == {},
        timeout=CLEANUP_BOUND_SECONDS,
        what="the sweep deleted the objects",
    )
    waiting.until(
        lambda: (
            f"{REGION}.{tenant}.{uid}"
            not in (
                gw.world.kube.get(
                    core_v1.ConfigMap, cleanup.PENDING, namespace=operatorsetup.NAMESPACE
                ).data
                or {}
            )
        ),
        timeout=CLEANUP_BOUND_SECONDS,
        what="the pending entry removed",
    )
    assert queue_keys(region_redis[REGION], tenant, uid) == []


def queue_keys(server: redis.LocalRedis, tenant: str, uid: str) -> list[str]:
    """Every key of the batch in the region's Redis (any pool)."""
    with redis_py.Redis(host="127.0.0.1", port=server.port, decode_responses=True) as client:
        return sorted(client.scan_iter(match=f"*{uid}*"))


def test_wrong_store_keys_show_on_the_batch_naming_region_and_store_and_no_secret_is_logged(
    gw: GatewayWorld,
    region_redis: dict[str, redis.LocalRedis],
    region_stores: dict[str, s3server.LocalS3],
    running_operator: operatorproc.OperatorProcess,
    tmp_path: pathlib.Path,
) -> None:
    tenant, key = gw.ready_tenant("s3keys")
    server = region_stores[REGION]
    wrong = "wrong-" + "k" * 30
    pool = workerproc.Workers(
        redis_url=region_redis[REGION].url, storage=tmp_path / "scratch",
        logs=tmp_path / "logs", tenant=tenant, region=REGION,
    )  # fmt: skip
    try:
        worker = asyncio.run(
            pool.start(
                *s3fixtures.worker_args(server), env=s3fixtures.worker_env(server, secret=wrong)
            )
        )
        with gw.client(key) as http:
            answer = http.post("/api/v1/batch/generate", json={"items": items(2)})
            assert answer.status_code == 202, answer.text
            batch_id = str(answer.json()["id"])

        def condition() -> dict[str, str] | None:
            status = gw.batch(tenant, batch_id).get("status") or {}
            found = [c for c in status.get("conditions") or [] if c["type"] == "StoreAvailable"]
            return found[0] if found and found[0]["status"] == "False" else None

        waiting.until(lambda: condition() is not None, timeout=60, what="StoreAvailable=False")
        shown = condition()
        assert shown is not None
        assert shown["reason"] == "AccessDenied"
        assert f"region {REGION}" in shown["message"]
        assert server.endpoint in shown["message"]
        status = gw.batch(tenant, batch_id)["status"]
        assert status["counts"].get("failed", 0) == 0
        for text in (worker.log(), running_operator.log(), str(status)):
            assert wrong not in text
            assert server.secret_access_key not in text
    finally:
        pool.stop_all()
