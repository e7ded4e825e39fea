"""The gateway at the edges of what it accepts and of what it depends on: a body nested
deeper than any batch, a body too large, Redis gone while a stream is asked for, and an
Idempotency-Key whose record Redis lost. Each is a problem document the client can act
on, never a 500, a dropped connection or a duplicate batch, and every authenticated
request that reached its body is charged to the rate limit. Its limits and idempotency
records also hold on a Redis Cluster and on a TLS Redis of a private CA."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import httpx
import pytest
import redis as sync_redis
from websockets.exceptions import InvalidStatus
from websockets.sync import client as ws_client

from imagegen.gateway import keyspace
from imagegen.localcluster import redis, rediscluster
from tests.integration import gatewayproc, waiting
from tests.integration.conftest import GATEWAY_REDIS_DB
from tests.integration.gatewayworld import GatewayWorld

SUBMIT = "/api/v1/batch/generate"


def remaining(answer: httpx.Response) -> int:
    """What the answer says is left of the tenant's request limit (it was charged)."""
    assert "X-RateLimit-Remaining" in answer.headers, answer.headers
    return int(answer.headers["X-RateLimit-Remaining"])


def test_a_deeply_nested_body_is_a_400_problem_and_is_charged(gateway_world: GatewayWorld) -> None:
    _, key = gateway_world.ready_tenant("deep", requests_per_minute=60, burst=100)
    body = '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with gateway_world.client(key, **{"Content-Type": "application/json"}) as http:
        first = http.post(SUBMIT, content=body)
        second = http.post(SUBMIT, content=body)
    assert first.status_code == 400, first.text
    assert first.headers["content-type"] == "application/problem+json"
    assert first.json()["type"].endswith("/malformed-json")
    assert "nested too deeply" in first.json()["detail"]
    assert remaining(second) < remaining(first)


def test_a_body_too_large_is_charged(gateway_world: GatewayWorld) -> None:
    _, key = gateway_world.ready_tenant("large", requests_per_minute=60, burst=100)
    body = b'{"items": [' + b" " * (2 * 1024 * 1024) + b"]}"
    with gateway_world.client(key, **{"Content-Type": "application/json"}) as http:
        first = http.post(SUBMIT, content=body)
        second = http.post(SUBMIT, content=body)
    assert first.status_code == 413, first.text
    assert remaining(second) < remaining(first)


@pytest.fixture
def gateway_without_redis(
    gateway_world: GatewayWorld, tmp_path: pathlib.Path
) -> Iterator[gatewayproc.GatewayProcess]:
    """A second gateway on the same cluster whose own redis-server has been stopped."""
    own = redis.start(workdir=tmp_path / "redis")
    gateway = gatewayproc.GatewayProcess(
        kubeconfig=gateway_world.gateway.kubeconfig,
        redis_url=own.url,
        workdir=tmp_path / "gateway",
    )
    try:
        gateway.start()
        own.stop()
        yield gateway
    finally:
        own.stop()
        gateway.stop()
    assert "Traceback" not in gateway.log(), gateway.log()[-4000:]


def test_a_websocket_while_redis_is_down_is_refused_with_503_and_retry_after(
    gateway_world: GatewayWorld, gateway_without_redis: gatewayproc.GatewayProcess
) -> None:
    tenant, key = gateway_world.ready_tenant("noredis")
    with gateway_world.client(key) as http:
        assert http.post(SUBMIT, json={"items": [{"prompt": "a gull"}]}).status_code == 202
    batch_id = gateway_world.batches(tenant)[0]["metadata"]["name"]
    url = f"ws://127.0.0.1:{gateway_without_redis.port}/api/v1/batches/{batch_id}/events"
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(url, additional_headers={"Authorization": f"Bearer {key}"})
    assert refused.value.response.status_code == 503
    assert refused.value.response.headers["Retry-After"] == "1"
    with httpx.Client(base_url=gateway_without_redis.url, timeout=30) as http:
        sse = http.get(
            f"/api/v1/batches/{batch_id}/events",
            headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"},
        )
    assert sse.status_code == 503
    assert sse.headers["Retry-After"] == "1"


def test_an_idempotent_submission_whose_record_was_lost_is_replayed_not_duplicated(
    gateway_world: GatewayWorld, redis_server: redis.LocalRedis
) -> None:
    tenant, key = gateway_world.ready_tenant("once")
    body = {"items": [{"prompt": "a gull over the harbour"}]}
    headers = {"Idempotency-Key": "order-7"}
    lost_record = keyspace.idempotency(tenant, "order-7")
    store = sync_redis.Redis(port=redis_server.port, db=GATEWAY_REDIS_DB)
    with gateway_world.client(key) as http:
        first = http.post(SUBMIT, json=body, headers=headers)
        # As if Redis failed while the answer was kept, or restarted without its data.
        assert store.delete(lost_record) == 1
        again = http.post(SUBMIT, json=body, headers=headers)
        store.delete(lost_record)
        other = http.post(SUBMIT, json={"items": [{"prompt": "a crab"}]}, headers=headers)
    store.close()
    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert other.status_code == 422, other.text
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert [b["metadata"]["name"] for b in gateway_world.batches(tenant)] == [first.json()["id"]]


@pytest.fixture(params=["cluster", "tls"])
def gateway_elsewhere(
    request: pytest.FixtureRequest, gateway_world: GatewayWorld, tmp_path: pathlib.Path
) -> Iterator[gatewayproc.GatewayProcess]:
    """A second gateway on the same cluster whose management Redis is the 12-node Redis
    Cluster, or a TLS Redis of a private CA with a password (the settings file names the
    CA and password files, as the chart writes it). It delivers no webhooks: the session's
    gateway does."""
    if request.param == "cluster":
        cluster: rediscluster.LocalRedisCluster = request.getfixturevalue("redis_cluster")
        settings: dict[str, object] = {"url": cluster.url}
    else:
        tls: redis.LocalTlsRedis = request.getfixturevalue("tls_redis")
        password = tmp_path / "redis-password"
        password.touch(mode=0o600)
        password.write_text(tls.password)
        settings = {"url": tls.url, "caFile": str(tls.pki.ca_cert), "passwordFile": str(password)}
    gateway = gatewayproc.GatewayProcess(
        kubeconfig=gateway_world.gateway.kubeconfig,
        redis_url=str(settings["url"]),
        workdir=tmp_path / "gateway",
        extra_settings={"redis": settings, "webhooks_enabled": False},
    )
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.log(), gateway.log()[-4000:]


def test_limits_and_idempotency_hold_on_a_redis_cluster_and_over_tls(
    gateway_world: GatewayWorld, gateway_elsewhere: gatewayproc.GatewayProcess
) -> None:
    """The single node is the session gateway's (test_gateway_api); here the same limiter
    and idempotency records live in a Redis Cluster's slots, or behind TLS."""
    tenant, key = gateway_world.ready_tenant("elsewhere", requests_per_minute=1, burst=8)
    body = {"items": [{"prompt": "a gull"}]}
    with httpx.Client(
        base_url=gateway_elsewhere.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        # An unknown key is refused before the limit: only the 200 spends one request.
        waiting.until(
            lambda: http.get("/api/v1/batches").status_code == 200,
            timeout=60,
            what="the second gateway accepts the key",
        )
        first = http.post(SUBMIT, json=body, headers={"Idempotency-Key": "order-9"})
        again = http.post(SUBMIT, json=body, headers={"Idempotency-Key": "order-9"})
        codes = [http.get("/api/v1/batches/x").status_code for _ in range(5)]
        refused = http.get("/api/v1/batches/x")
    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert again.json()["id"] == first.json()["id"]
    assert [b["metadata"]["name"] for b in gateway_world.batches(tenant)] == [first.json()["id"]]
    assert codes == [404] * 5
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining"] == "0"
