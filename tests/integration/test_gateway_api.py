"""The batch API over HTTP: a real `imagegen gateway` process under its least-privilege
ServiceAccount, the real operator publishing API keys, a real Redis for limits and
idempotency. Submissions become ImageBatch CRs; the CR is the only record."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from imagegen.api import meta
from imagegen.gateway import idempotency, translate
from tests.integration import waiting
from tests.integration.gatewayworld import GatewayWorld, items

PROBLEM = "application/problem+json"
SUBMIT = "/api/v1/batch/generate"


@pytest.fixture
def gw(gateway_world: GatewayWorld) -> GatewayWorld:
    return gateway_world


@pytest.fixture
def tenant(gw: GatewayWorld) -> tuple[str, str]:
    """A tenant the gateway knows: (name, key)."""
    return gw.ready_tenant()


def submit(http: httpx.Client, count: int = 2, **body: Any) -> httpx.Response:
    return http.post(SUBMIT, json={"items": items(count), **body})


def test_a_submission_creates_the_batch_and_answers_202_with_its_location(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    with gw.client(key) as http:
        reply = submit(http, 3, priority="high", metadata={"order": "42"})
    assert reply.status_code == 202, reply.text
    batch = reply.json()
    assert reply.headers["location"] == f"/api/v1/batches/{batch['id']}"
    assert batch["status"] == "Pending"
    assert batch["request_counts"] == {
        "total": 3, "queued": 0, "running": 0, "succeeded": 0, "failed": 0,
    }  # fmt: skip
    assert batch["metadata"] == {"order": "42"}
    assert batch["created_at"]
    cr = gw.batch(name, batch["id"])
    assert cr["spec"]["tenant"] == name
    assert cr["spec"]["priority"] == "high"
    assert [item["id"] for item in cr["spec"]["items"]] == ["item-0", "item-1", "item-2"]
    assert cr["spec"]["items"][0]["size"] == "64x64"


def test_the_alias_path_and_reads_follow_the_cr(gw: GatewayWorld, tenant: tuple[str, str]) -> None:
    name, key = tenant
    with gw.client(key) as http:
        created = http.post("/api/v1/batches", json={"items": items(1)}).json()
        waiting.until(
            lambda: http.get(f"/api/v1/batches/{created['id']}").json()["status"] != "Pending",
            timeout=60,
            what="the operator admits the batch",
        )
        read = http.get(f"/api/v1/batches/{created['id']}").json()
    assert read["status"] == gw.batch(name, created["id"])["status"]["phase"]
    assert read["deadline"]


def test_batches_are_listed_a_page_at_a_time(gw: GatewayWorld, tenant: tuple[str, str]) -> None:
    _, key = tenant
    with gw.client(key) as http:
        made = {submit(http, 1).json()["id"] for _ in range(5)}
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = http.get("/api/v1/batches", params=params).json()
            pages += 1
            seen += [batch["id"] for batch in page["data"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert sorted(seen) == sorted(made)
    assert pages == 3


def test_cancel_sets_spec_cancel_and_the_operator_cancels(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    with gw.client(key) as http:
        batch_id = submit(http, 4).json()["id"]
        reply = http.post(f"/api/v1/batches/{batch_id}/cancel")
        assert reply.status_code == 202, reply.text
        assert reply.json()["cancel_requested"] is True
        assert gw.batch(name, batch_id)["spec"]["cancel"] is True
        waiting.until(
            lambda: http.get(f"/api/v1/batches/{batch_id}").json()["status"] == "Cancelled",
            timeout=90,
            what="Cancelled",
        )
        again = http.post(f"/api/v1/batches/{batch_id}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"] == "batch already finished (Cancelled)"


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "missing Authorization header"),
        ("Basic dXNlcjpwYXNz", "Authorization must be 'Bearer <API key>'"),
        ("Bearer", "Authorization must be 'Bearer <API key>'"),
        ("Bearer not-a-key", "unknown or expired API key"),
        ("Bearer igk_" + "A" * 43, "unknown or expired API key"),
    ],
    ids=["missing", "not-bearer", "empty", "malformed", "unknown"],
)
def test_requests_without_a_valid_key_get_401(
    gw: GatewayWorld, authorization: str | None, detail: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with gw.client(**headers) as http:
        for reply in (http.get("/api/v1/batches"), submit(http)):
            assert reply.status_code == 401
            assert reply.headers["content-type"] == PROBLEM
            assert reply.headers["www-authenticate"].startswith("Bearer")
            assert reply.json()["detail"] == detail


def test_another_tenants_batch_is_not_found_whatever_the_request(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    _, owner_key = tenant
    _, other_key = gw.ready_tenant("other")
    with gw.client(owner_key) as owner:
        batch_id = submit(owner, 1).json()["id"]
    with gw.client(other_key) as other:
        replies = [
            other.get(f"/api/v1/batches/{batch_id}"),
            other.post(f"/api/v1/batches/{batch_id}/cancel"),
            other.get(f"/api/v1/batches/{batch_id}/images/item-0"),
            other.get(
                f"/api/v1/batches/{batch_id}/events", headers={"Accept": "text/event-stream"}
            ),
        ]
        listed = other.get("/api/v1/batches").json()["data"]
    assert [reply.status_code for reply in replies] == [404, 404, 404, 404]
    assert all(reply.json()["detail"] == f"no batch {batch_id!r}" for reply in replies)
    assert listed == []


def test_both_keys_work_during_a_rotation_and_the_oldest_stops_after_the_next(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, first = tenant
    gw.rotate(name, "2026-11-26")
    waiting.until(lambda: gw.key(name) != first, timeout=60, what="a new key")
    second = gw.key(name)
    gw.wait_key_works(second)
    with gw.client(first) as http:
        assert http.get("/api/v1/batches").status_code == 200
    gw.rotate(name, "2026-11-27")
    waiting.until(lambda: gw.key(name) != second, timeout=60, what="a third key")
    gw.wait_key_works(gw.key(name))
    with gw.client(first) as http:
        waiting.until(
            lambda: http.get("/api/v1/batches").status_code == 401,
            timeout=30,
            what="the oldest key refused",
        )
    with gw.client(second) as http:
        assert http.get("/api/v1/batches").status_code == 200


def _body(count: int = 1, **item: Any) -> dict[str, Any]:
    return {"items": [{"prompt": "a lighthouse", **item}] * count}


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        ({"items": [{"prompt": f"p{n}"} for n in range(101)]}, 422, ["items"]),
        ({"items": []}, 422, ["items"]),
        (_body(prompt=""), 422, ["items.0.prompt"]),
        (_body(prompt="x" * 2001), 422, ["items.0.prompt"]),
        (_body(size="64by64"), 422, ["items.0.size"]),
        ({**_body(), "colour": "blue"}, 422, ["colour"]),
        (_body(negative_promt="people"), 422, ["items.0.negative_promt"]),
        ({"items": [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}]}, 422, ["items"]),
        ({**_body(), "priority": "urgent"}, 422, ["priority"]),
        ([1, 2], 422, [""]),
    ],
    ids=[
        "101-items", "no-items", "empty-prompt", "long-prompt", "bad-size", "unknown-field",
        "unknown-item-field", "repeated-id", "bad-priority", "not-an-object",
    ],
)  # fmt: skip
def test_invalid_bodies_are_refused_naming_each_field(
    gw: GatewayWorld, tenant: tuple[str, str], body: Any, status: int, fields: list[str]
) -> None:
    name, key = tenant
    with gw.client(key) as http:
        reply = http.post(SUBMIT, json=body)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == PROBLEM
    problem = reply.json()
    assert problem["status"] == status
    assert problem["type"].endswith("/validation")
    assert [error["field"] for error in problem["errors"]] == fields
    assert all(error["pointer"] == "/" + error["field"].replace(".", "/") or error["field"] == ""
               for error in problem["errors"])  # fmt: skip
    assert gw.batches(name) == []


def test_malformed_json_is_400_and_an_oversized_body_413_before_it_is_read(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    with gw.client(key) as http:
        malformed = http.post(
            SUBMIT, content=b'{"items": [', headers={"Content-Type": "application/json"}
        )
        declared = http.post(SUBMIT, content=b"x" * 2_000_000)

        def chunks() -> Iterator[bytes]:
            yield b'{"items": [{"prompt": "'
            for _ in range(200):
                yield b"x" * 10_000

        streamed = http.post(SUBMIT, content=chunks())
    assert malformed.status_code == 400
    assert malformed.json()["type"].endswith("/malformed-json")
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["detail"] == "request body exceeds 1048576 bytes"
    assert gw.batches(name) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        # Loopback other than the one address this gateway allowlists, by name and number.
        "http://localhost:9/hook",
        "http://127.0.0.1:9/hook",
    ],
)
def test_a_webhook_to_a_private_address_is_refused_at_submit_naming_webhook_url(
    gw: GatewayWorld, tenant: tuple[str, str], url: str
) -> None:
    name, key = tenant
    with gw.client(key) as http:
        reply = submit(http, 1, webhook={"url": url})
    assert reply.status_code == 422, reply.text
    assert [error["field"] for error in reply.json()["errors"]] == ["webhook.url"]
    assert gw.batches(name) == []


def _limits(reply: httpx.Response) -> dict[str, str]:
    return {name: reply.headers.get(name, "") for name in (
        "ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining",
        "x-ratelimit-reset",
    )}  # fmt: skip


def test_every_answer_to_a_tenant_carries_the_rate_limit_headers(gw: GatewayWorld) -> None:
    _, key = gw.ready_tenant("headers", requests_per_minute=60, burst=10)
    with gw.client(key) as http:
        replies = [
            http.get("/api/v1/batches"),
            http.get("/api/v1/batches/missing"),
            http.post(SUBMIT, json={"items": []}),
            submit(http, 5),
        ]
    assert [reply.status_code for reply in replies] == [200, 404, 422, 202]
    for reply in replies[:3]:
        assert _limits(reply)["ratelimit-policy"] == '"requests";q=10;w=10'
        assert _limits(reply)["x-ratelimit-limit"] == "10"
    remaining = [int(_limits(reply)["x-ratelimit-remaining"]) for reply in replies]
    # The first GET at the wait_key_works poll spent some; each request here spends one.
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[0] - remaining[-1] == 3
    submitted = _limits(replies[3])
    assert submitted["ratelimit-policy"] == '"requests";q=10;w=10, "images";q=600;w=60'
    assert submitted["ratelimit"].endswith('"images";r=595;t=1')


def test_past_the_burst_requests_get_429_with_retry_after(gw: GatewayWorld) -> None:
    _, key = gw.ready_tenant("limited", requests_per_minute=1, burst=5)
    with gw.client(key) as http:
        codes = [http.get("/api/v1/batches/x").status_code for _ in range(5)]
        refused = http.get("/api/v1/batches/x")
    assert 429 not in codes[:4]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"


def test_a_burst_of_2000_is_admitted_and_the_2001st_is_not(gw: GatewayWorld) -> None:
    # At 1 request a minute nothing comes back while the burst is spent, as long as the
    # 2000 requests take under a minute: they are sent from 8 clients at once for that.
    name = gw.tenant("burst", requests_per_minute=1, burst=2000)
    key = gw.key(name)
    gw.wait_key_works(key)  # spends one request of the burst

    def spend(count: int) -> list[int]:
        with gw.client(key) as http:
            return [http.get("/api/v1/batches/Not-A-Name").status_code for _ in range(count)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        codes = [code for part in pool.map(spend, [250] * 7 + [249]) for code in part]
    with gw.client(key) as http:
        refused = http.get("/api/v1/batches/Not-A-Name")
    assert codes == [404] * 1999
    assert refused.status_code == 429


def test_raising_the_tenants_limit_applies_without_a_restart(gw: GatewayWorld) -> None:
    name, key = gw.ready_tenant("live", requests_per_minute=1, burst=2)
    with gw.client(key) as http:
        assert http.get("/api/v1/batches").status_code in (200, 429)
        assert http.get("/api/v1/batches").status_code == 429
        gw.patch_tenant(name, {"rateLimit": {"requestsPerMinute": 1, "burst": 50}})
        admitted = waiting.until(
            lambda: (reply := http.get("/api/v1/batches")).status_code == 200 and reply,
            timeout=30,
            what="the new limit admits",
        )
    assert admitted.headers["x-ratelimit-limit"] == "50"


def test_an_idempotent_replay_returns_the_same_answer_and_creates_nothing(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    body = {"items": items(2), "metadata": {"order": "7"}}
    with gw.client(key, **{"Idempotency-Key": "order-7"}) as http:
        first = http.post(SUBMIT, json=body)
        # The same JSON spelled differently is the same request.
        again = http.post(
            SUBMIT,
            content=json.dumps(body, indent=4, sort_keys=True),
            headers={"Content-Type": "application/json"},
        )
        other = http.post(SUBMIT, json={"items": items(3)})
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert len(gw.batches(name)) == 1


def test_concurrent_duplicates_create_exactly_one_batch(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    body = {"items": items(1)}

    def send(_: int) -> httpx.Response:
        with gw.client(key, **{"Idempotency-Key": "together"}) as http:
            return http.post(SUBMIT, json=body)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(send, range(16)))
    codes = sorted({reply.status_code for reply in replies})
    assert set(codes) <= {202, 409}
    accepted = {reply.content for reply in replies if reply.status_code == 202}
    assert len(accepted) == 1
    assert len(gw.batches(name)) == 1


def test_a_duplicate_while_the_first_is_in_flight_gets_409_and_nothing_is_created(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    body = {"items": items(1)}
    fingerprint = idempotency.fingerprint(method="POST", path=translate.API_PREFIX, body=body)

    async def first_request_claims() -> None:
        # What the first request's claim leaves in Redis while it waits on the apiserver.
        client = aioredis.Redis.from_url(gw.gateway.redis_url)
        try:
            store = idempotency.IdempotencyStore(redis=client)
            state, _ = await store.claim(tenant=name, key="slow", fingerprint=fingerprint)
            assert state is idempotency.State.NEW
        finally:
            await client.aclose()

    asyncio.run(first_request_claims())
    with gw.client(key, **{"Idempotency-Key": "slow"}) as http:
        reply = http.post(SUBMIT, json=body)
    assert reply.status_code == 409
    assert reply.json()["type"].endswith("/idempotency-in-flight")
    assert gw.batches(name) == []


def test_images_are_charged_per_item_against_the_per_minute_quota(gw: GatewayWorld) -> None:
    name, key = gw.ready_tenant("images", quota={"max_images_per_minute": 10})
    with gw.client(key) as http:
        first = submit(http, 6)
        second = submit(http, 6)
        too_big = submit(http, 11)
    assert first.status_code == 202
    assert second.status_code == 429
    assert second.headers["ratelimit"].endswith('"images";r=4;t=36')
    # 2 more images come back every 6 s at 10 a minute.
    assert second.headers["retry-after"] == "12"
    assert too_big.status_code == 422
    assert [error["field"] for error in too_big.json()["errors"]] == ["items"]
    assert len(gw.batches(name)) == 1


def test_each_answer_carries_its_request_id_which_the_batch_keeps_as_correlation_id(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    with gw.client(key) as http:
        created = submit(http, 1)
        listed = http.get("/api/v1/batches")
    with gw.client() as anonymous:
        refused = anonymous.get("/api/v1/batches")
    ids = [answer.headers["x-request-id"] for answer in (created, listed, refused)]
    assert all(request_id.startswith("req-") for request_id in ids)
    assert len(set(ids)) == 3
    annotations = gw.batch(name, created.json()["id"])["metadata"]["annotations"]
    assert annotations[meta.CORRELATION_ANNOTATION] == ids[0]
    logged = [
        json.loads(line)
        for line in gw.gateway.log().splitlines()
        if line.startswith("{") and ids[0] in line
    ]
    assert logged, "the submission is logged under its request id"
    assert {line["tenant"] for line in logged} == {name}


def test_metrics_count_requests_by_route_template_and_tenant_never_by_batch_or_key(
    gw: GatewayWorld, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    with gw.client(key) as http:
        batch_id = submit(http, 1).json()["id"]
        http.get(f"/api/v1/batches/{batch_id}")
        exposition = http.get("/metrics").text
    assert (
        'imagegen_gateway_requests_total{code="202",method="POST",route="/api/v1/batch/generate"}'
    ) in exposition
    assert 'route="/api/v1/batches/{batch_id}"' in exposition
    assert (
        f'imagegen_gateway_tenant_requests_total{{code="200",'
        f'route="/api/v1/batches/{{batch_id}}",tenant="{name}"}} 1.0'
    ) in exposition
    assert f'imagegen_gateway_batches_created_total{{tenant="{name}"}} 1.0' in exposition
    assert batch_id not in exposition
    assert key not in exposition
