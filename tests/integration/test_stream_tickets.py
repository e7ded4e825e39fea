"""Stream tickets: how a browser, which cannot set Authorization on a WebSocket or an
EventSource, opens a batch's event stream without putting its API key in a URL. A ticket
opens one stream of one batch, once, for a short time; Redis holds only its digest."""

from __future__ import annotations

import json

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.exceptions import InvalidStatus
from websockets.sync import client as ws_client

from imagegen.gateway import keyspace, tickets
from tests.integration import waiting
from tests.integration.gatewayworld import GatewayWorld, items


async def test_a_ticket_is_redeemed_once_and_redis_never_holds_it(
    scratch_redis: aioredis.Redis,
) -> None:
    store = tickets.TicketStore(redis=scratch_redis, ttl_seconds=30)
    ticket = await store.issue(tenant="acme", batch="batch-1")
    stored = [key async for key in scratch_redis.scan_iter("*")]
    assert stored == [keyspace.stream_ticket(ticket)]
    assert ticket not in stored[0]
    assert ticket not in json.dumps(await scratch_redis.get(stored[0]))
    assert 0 < await scratch_redis.ttl(stored[0]) <= 30
    assert await store.redeem(ticket) == tickets.Grant(tenant="acme", batch="batch-1")
    assert await store.redeem(ticket) is None
    assert await store.redeem("igt_never-issued") is None


async def test_a_ticket_not_redeemed_in_time_expires(scratch_redis: aioredis.Redis) -> None:
    store = tickets.TicketStore(redis=scratch_redis, ttl_seconds=1)
    ticket = await store.issue(tenant="acme", batch="batch-1")

    async def gone() -> bool:
        return await scratch_redis.exists(keyspace.stream_ticket(ticket)) == 0

    await waiting.until_async(gone, seconds=10, what="the ticket's key expires")
    assert await store.redeem(ticket) is None


def ticket(http: httpx.Client, batch_id: str) -> str:
    reply = http.post(f"/api/v1/batches/{batch_id}/events/tickets")
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["expires_in"] == 30
    assert body["parameter"] == "ticket"
    issued: str = body["ticket"]
    return issued


def first_message(gw: GatewayWorld, batch_id: str, issued: str) -> dict[str, object]:
    url = f"ws://127.0.0.1:{gw.gateway.port}/api/v1/batches/{batch_id}/events?ticket={issued}"
    with ws_client.connect(url, open_timeout=30, close_timeout=5) as socket:
        loaded: dict[str, object] = json.loads(socket.recv(timeout=30))
        return loaded


def test_a_ticket_opens_the_websocket_once_for_its_batch_only(gateway_world: GatewayWorld) -> None:
    gw = gateway_world
    _, key = gw.ready_tenant("tkt")
    with gw.client(key) as http:
        first = http.post("/api/v1/batches", json={"items": items(2)}).json()["id"]
        second = http.post("/api/v1/batches", json={"items": items(2)}).json()["id"]
        issued = ticket(http, first)
        assert first_message(gw, first, issued)["id"] == first
        with pytest.raises(InvalidStatus) as reused:
            first_message(gw, first, issued)
        assert reused.value.response.status_code == 401
        assert b"bad-stream-ticket" in reused.value.response.body

        elsewhere = ticket(http, first)
        with pytest.raises(InvalidStatus) as other_batch:
            first_message(gw, second, elsewhere)
        assert other_batch.value.response.status_code == 401
        # Refused at the wrong batch, and used up all the same: no second try.
        with pytest.raises(InvalidStatus):
            first_message(gw, first, elsewhere)

        assert http.post("/api/v1/batches/batch-nothere/events/tickets").status_code == 404


def test_a_ticket_opens_server_sent_events_and_another_tenants_ticket_nothing(
    gateway_world: GatewayWorld,
) -> None:
    gw = gateway_world
    _, key = gw.ready_tenant("tkt")
    _, other_key = gw.ready_tenant("tkt")
    with gw.client(key) as http, gw.client(other_key) as other:
        batch_id = http.post("/api/v1/batches", json={"items": items(1)}).json()["id"]
        assert other.post(f"/api/v1/batches/{batch_id}/events/tickets").status_code == 404
        issued = ticket(http, batch_id)
    with (
        gw.client() as anonymous,
        anonymous.stream(
            "GET",
            f"/api/v1/batches/{batch_id}/events",
            params={"ticket": issued},
            headers={"Accept": "text/event-stream"},
        ) as reply,
    ):
        assert reply.status_code == 200
        lines = reply.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: batch"
        data = next(line for line in lines if line.startswith("data:"))
        assert json.loads(data.removeprefix("data:"))["id"] == batch_id
    with gw.client() as anonymous:
        again = anonymous.get(
            f"/api/v1/batches/{batch_id}/events",
            params={"ticket": issued},
            headers={"Accept": "text/event-stream"},
        )
    assert again.status_code == 401
    assert again.json()["type"].endswith("bad-stream-ticket")
    assert issued not in gw.gateway.log()
