"""A tenant's whole journey over HTTP: submit 100 images, follow the batch live until it
succeeds, fetch an image. The real operator admits and dispatches, real worker processes
generate into the folder the gateway serves, and the live stream comes from a Kubernetes
watch of the batch's CR."""

from __future__ import annotations

import asyncio
import datetime
import io
import itertools
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import httpx
import httpx_sse
import pytest
from PIL import Image
from websockets.exceptions import InvalidStatus
from websockets.sync import client as ws_client

from imagegen.api import meta
from imagegen.gateway.webhooks import signing
from imagegen.localcluster import cluster, redis
from tests.integration import gatewayproc, gatewayworld, webhookreceiver, workerproc
from tests.integration.gatewayworld import GatewayWorld, items

REGION = "us-east"
STREAM_SECONDS = 240


@pytest.fixture
def gw(gateway_world: GatewayWorld) -> GatewayWorld:
    return gateway_world


@pytest.fixture
def tenant_with_workers(
    gw: GatewayWorld,
    region_redis: dict[str, redis.LocalRedis],
    gateway_images: pathlib.Path,
    tmp_path: pathlib.Path,
) -> Iterator[tuple[str, str]]:
    """A tenant the gateway knows, with two workers of its pool storing into the folder
    the gateway serves images from: (name, key)."""
    name, key = gw.ready_tenant("e2e")
    pool = workerproc.Workers(
        redis_url=region_redis[REGION].url, storage=gateway_images, logs=tmp_path / "logs",
        tenant=name, region=REGION,
    )  # fmt: skip
    try:
        for _ in range(2):
            asyncio.run(pool.start("--concurrency", "4", "--lease-seconds", "5"))
        yield name, key
    finally:
        pool.stop_all()


def websocket_url(gateway: gatewayproc.GatewayProcess, batch_id: str) -> str:
    return f"ws://127.0.0.1:{gateway.port}/api/v1/batches/{batch_id}/events"


def follow_websocket(gw: GatewayWorld, key: str, batch_id: str) -> tuple[list[dict[str, Any]], int]:
    """Every message until the server closes, and the close code."""
    received = []
    with ws_client.connect(
        websocket_url(gw.gateway, batch_id),
        additional_headers={"Authorization": f"Bearer {key}"},
        open_timeout=30,
        close_timeout=10,
    ) as socket:
        for message in socket:
            received.append(json.loads(message))
        assert socket.close_code is not None
        return received, socket.close_code


def assert_image(http: httpx.Client, batch_id: str, item_id: str) -> None:
    reply = http.get(f"/api/v1/batches/{batch_id}/images/{item_id}")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(reply.content)) as image:
        assert image.size == (64, 64)


def test_100_images_submitted_over_http_are_followed_by_websocket_and_fetched(
    gw: GatewayWorld, tenant_with_workers: tuple[str, str], management: cluster.LocalCluster
) -> None:
    _, key = tenant_with_workers
    began = datetime.datetime.now(datetime.UTC)
    with gw.client(key) as http:
        submitted = http.post("/api/v1/batch/generate", json={"items": items(100)})
        assert submitted.status_code == 202, submitted.text
        batch_id = submitted.json()["id"]
        messages, close_code = follow_websocket(gw, key, batch_id)
        last = messages[-1]
        assert close_code == 1000
        assert last["status"] == "Succeeded"
        assert last["request_counts"]["succeeded"] == 100
        assert len(messages) >= 3
        assert all(a != b for a, b in itertools.pairwise(messages))
        done = [m["request_counts"]["succeeded"] for m in messages]
        assert done == sorted(done)
        assert_image(http, batch_id, "item-57")
    watches = [
        event for event in management.audit_events()
        if event["user"].get("username") == gatewayworld.GATEWAY_USER and event["verb"] == "watch"
        and event["objectRef"].get("resource") == "imagebatches"
    ]  # fmt: skip
    assert watches, "the stream follows a Kubernetes watch of the batch"
    assert gatewayworld.refused_requests(management, since=began) == []


def test_the_same_batch_can_be_followed_with_server_sent_events(
    gw: GatewayWorld, tenant_with_workers: tuple[str, str]
) -> None:
    _, key = tenant_with_workers
    with gw.client(key) as http:
        batch_id = http.post("/api/v1/batches", json={"items": items(20)}).json()["id"]
        shown = []
        with httpx_sse.connect_sse(
            http, "GET", f"/api/v1/batches/{batch_id}/events",
            timeout=httpx.Timeout(30, read=STREAM_SECONDS),
        ) as source:  # fmt: skip
            assert source.response.headers["content-type"].startswith("text/event-stream")
            for event in source.iter_sse():
                if event.event == "batch":
                    shown.append(event.json())
        assert shown[-1]["status"] == "Succeeded"
        assert shown[-1]["progress"] == "20/20"
        assert_image(http, batch_id, "item-3")


def test_a_finished_batch_streams_once_and_ends_and_an_unknown_one_is_refused(
    gw: GatewayWorld, tenant_with_workers: tuple[str, str]
) -> None:
    _, key = tenant_with_workers
    with gw.client(key) as http:
        batch_id = http.post("/api/v1/batches", json={"items": items(1)}).json()["id"]
        follow_websocket(gw, key, batch_id)
        messages, close_code = follow_websocket(gw, key, batch_id)
        plain = http.get(f"/api/v1/batches/{batch_id}/events")
        not_ready = http.get(f"/api/v1/batches/{batch_id}/images/nope")
    assert [m["status"] for m in messages] == ["Succeeded"]
    assert close_code == 1000
    assert plain.status_code == 406
    assert not_ready.status_code == 404
    with pytest.raises(InvalidStatus) as refused:
        follow_websocket(gw, key, "batch-nothere")
    assert refused.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as anonymous:
        follow_websocket(gw, "igk_" + "x" * 43, batch_id)
    assert anonymous.value.response.status_code == 401


async def test_a_batch_submitted_with_a_webhook_is_announced_signed_until_completed(
    gw: GatewayWorld,
    tenant_with_workers: tuple[str, str],
    gateway_webhook_receiver: webhookreceiver.Receiver,
) -> None:
    name, key = tenant_with_workers
    receiver = gateway_webhook_receiver
    # Subscriptions name phases; deliveries are typed batch.started, .progress, .completed.
    events = ["running", "progress", "succeeded"]
    with gw.client(key) as http:
        reply = http.post(
            "/api/v1/batches",
            json={"items": items(20), "webhook": {"url": receiver.url, "events": events}},
        )
    assert reply.status_code == 202, reply.text
    batch_id = reply.json()["id"]

    def announced(kind: str) -> list[dict[str, Any]]:
        bodies = [json.loads(r.body) for r in receiver.ok()]
        return [b for b in bodies if b["type"] == kind and b["data"]["id"] == batch_id]

    # The receiver runs on this test's event loop: wait by sleeping on it, not blocking.
    for _ in range(STREAM_SECONDS):
        if announced("batch.completed"):
            break
        await asyncio.sleep(1)
    assert announced("batch.completed"), [r.body for r in receiver.received]

    secret = gw.key(name, which=meta.WEBHOOK_SECRET_KEY)
    for delivery in receiver.ok():
        signing.verify(
            secret=secret, headers=delivery.headers, body=delivery.body, now=int(delivery.at)
        )
    ordered = sorted(
        (json.loads(r.body) for r in receiver.ok()), key=lambda body: body["timestamp"]
    )
    kinds = [body["type"] for body in ordered if body["data"]["id"] == batch_id]
    assert kinds[0] == "batch.started"
    assert kinds[-1] == "batch.completed"
    assert set(kinds) <= {"batch.started", "batch.progress", "batch.completed"}
    percents = [b["data"]["percent"] for b in ordered if b["type"] == "batch.progress"]
    assert len(percents) == len(set(percents)), "each tenth is announced once"
    ids = [{k.lower(): v for k, v in r.headers.items()}["webhook-id"] for r in receiver.ok()]
    assert len(ids) == len(set(ids)), "no event was delivered twice"
