"""Streams on the live gateway process: caps per tenant and per process (429 with
Retry-After, a closed stream frees its slot), requests that still succeed while a tenant
holds every stream it may, and a namespace watch that breaks: its streams end (WebSocket
1013, the SSE stream closes), /readyz says so, and the next subscriber starts it again."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync import client as ws_client

from imagegen.localcluster import cluster, redis
from tests.integration import faultylink, gatewayproc, waiting
from tests.integration.conftest import GATEWAY_REDIS_DB
from tests.integration.gatewayworld import GATEWAY_USER, GatewayWorld, items

PER_TENANT = 3
PER_PROCESS = 5


def small_gateway(
    gateway_world: GatewayWorld,
    redis_server: redis.LocalRedis,
    workdir: pathlib.Path,
    *,
    kubeconfig: pathlib.Path | None = None,
) -> gatewayproc.GatewayProcess:
    """A gateway of the test's own on the session's cluster and Redis, with small stream
    caps and only two connections for its requests: fewer than the watches it holds."""
    return gatewayproc.GatewayProcess(
        kubeconfig=kubeconfig or gateway_world.gateway.kubeconfig,
        redis_url=f"redis://127.0.0.1:{redis_server.port}/{GATEWAY_REDIS_DB}",
        workdir=workdir,
        extra_settings={
            "max_streams_per_tenant": PER_TENANT,
            "max_streams": PER_PROCESS,
            "kube_connections": 2,
            "webhooks_enabled": False,
        },
    )


@pytest.fixture
def gateway(
    gateway_world: GatewayWorld, redis_server: redis.LocalRedis, tmp_path: pathlib.Path
) -> Iterator[gatewayproc.GatewayProcess]:
    started = small_gateway(gateway_world, redis_server, tmp_path / "gateway")
    started.start()
    yield started
    started.stop()
    assert "Traceback" not in started.log(), started.log()[-4000:]


@dataclasses.dataclass
class Stream:
    """An SSE stream held open: the reply and the iterator of its lines.

    The iterator is kept for as long as the stream: a half-read iterator that is dropped
    closes the connection, and the gateway frees the slot (what made the first version of
    these tests see a fourth stream answered 200)."""

    reply: httpx.Response
    lines: Iterator[str] | None


def open_stream(stack: contextlib.ExitStack, http: httpx.Client, batch_id: str) -> Stream:
    """An SSE stream of the batch, held open by `stack`; its first event has been read."""
    reply = stack.enter_context(
        http.stream(
            "GET", f"/api/v1/batches/{batch_id}/events", headers={"Accept": "text/event-stream"}
        )
    )
    if reply.status_code != 200:
        return Stream(reply=reply, lines=None)
    lines = reply.iter_lines()
    while not next(lines).startswith("data:"):
        pass
    return Stream(reply=reply, lines=lines)


def client(gateway: gatewayproc.GatewayProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def tenant_on(
    gateway_world: GatewayWorld, gateway: gatewayproc.GatewayProcess, prefix: str
) -> tuple[str, str]:
    """A ready tenant whose key this gateway accepts too: (name, key)."""
    name, key = gateway_world.ready_tenant(prefix)
    with client(gateway, key) as http:
        waiting.until(
            lambda: http.get("/api/v1/batches").status_code == 200,
            timeout=60,
            what="the test's gateway accepts the key",
        )
    return name, key


def submit(http: httpx.Client) -> str:
    """A batch that stays Queued (no worker serves these tests): its streams stay open."""
    answer = http.post("/api/v1/batches", json={"items": items(1)})
    assert answer.status_code == 202, answer.text
    batch_id: str = answer.json()["id"]
    return batch_id


def reopened(stack: contextlib.ExitStack, http: httpx.Client, batch_id: str) -> Stream | None:
    """A stream once the gateway has freed a slot (it notices a closed one at once, but in
    its own time), else None for waiting.until to try again."""
    stream = open_stream(stack, http, batch_id)
    if stream.reply.status_code == 200:
        return stream
    assert stream.reply.status_code == 429, stream.reply.text
    stream.reply.close()
    return None


def test_a_tenant_past_its_cap_gets_429_and_a_closed_stream_frees_its_slot(
    gateway_world: GatewayWorld, gateway: gatewayproc.GatewayProcess
) -> None:
    _, key = tenant_on(gateway_world, gateway, "greedy")
    with contextlib.ExitStack() as stack, client(gateway, key) as http:
        batch_id = submit(http)
        held = [open_stream(stack, http, batch_id) for _ in range(PER_TENANT)]
        assert [s.reply.status_code for s in held] == [200] * PER_TENANT
        refused = open_stream(stack, http, batch_id)
        assert refused.reply.status_code == 429
        assert refused.reply.headers["Retry-After"] == "5"
        assert f"has {PER_TENANT} streams open" in refused.reply.read().decode()
        url = f"ws://127.0.0.1:{gateway.port}/api/v1/batches/{batch_id}/events"
        with pytest.raises(InvalidStatus) as websocket_refused:
            ws_client.connect(url, additional_headers={"Authorization": f"Bearer {key}"})
        assert websocket_refused.value.response.status_code == 429
        assert websocket_refused.value.response.headers["Retry-After"] == "5"

        held[0].reply.close()
        again = waiting.until(
            lambda: reopened(stack, http, batch_id), timeout=30, what="the freed slot"
        )
        assert again.reply.status_code == 200


def test_the_process_cap_holds_across_tenants_and_frees_with_a_closed_stream(
    gateway_world: GatewayWorld, gateway: gatewayproc.GatewayProcess
) -> None:
    keys = [tenant_on(gateway_world, gateway, prefix)[1] for prefix in ("first", "second", "late")]
    with contextlib.ExitStack() as stack:
        https = [stack.enter_context(client(gateway, key)) for key in keys]
        ids = [submit(http) for http in https]
        held = [open_stream(stack, https[0], ids[0]) for _ in range(PER_TENANT)]
        held += [open_stream(stack, https[1], ids[1]) for _ in range(PER_PROCESS - PER_TENANT)]
        assert [s.reply.status_code for s in held] == [200] * PER_PROCESS
        refused = open_stream(stack, https[2], ids[2])
        assert refused.reply.status_code == 429
        assert refused.reply.headers["Retry-After"] == "5"
        assert "as many streams as it can" in refused.reply.read().decode()

        held[-1].reply.close()
        late = waiting.until(
            lambda: reopened(stack, https[2], ids[2]), timeout=30, what="the freed slot"
        )
        assert late.reply.status_code == 200


def watches_of(management: cluster.LocalCluster, namespace: str) -> int:
    """Watches of ImageBatches in the namespace that the gateways opened."""
    return sum(
        1
        for e in management.audit_events()
        if e["user"].get("username") == GATEWAY_USER
        and e["verb"] == "watch"
        and e["stage"] == "ResponseStarted"
        and e.get("objectRef", {}).get("resource") == "imagebatches"
        and e.get("objectRef", {}).get("namespace") == namespace
    )


def test_requests_succeed_while_a_tenant_holds_its_maximum_of_streams(
    gateway_world: GatewayWorld,
    gateway: gatewayproc.GatewayProcess,
    management: cluster.LocalCluster,
) -> None:
    (greedy, greedy_key), (_, calm_key) = (
        tenant_on(gateway_world, gateway, prefix) for prefix in ("hog", "calm")
    )
    with contextlib.ExitStack() as stack:
        hog, other = (stack.enter_context(client(gateway, key)) for key in (greedy_key, calm_key))
        streamed = [submit(hog) for _ in range(PER_TENANT)]
        held = [open_stream(stack, hog, batch_id) for batch_id in streamed]
        held.append(open_stream(stack, other, submit(other)))
        assert [s.reply.status_code for s in held] == [200] * (PER_TENANT + 1)
        # Two namespaces watched and the process's own two watches: more connections than
        # the gateway's requests have (2), and every request still answers at once.
        for http in (hog, other, hog, other):
            batch_id = submit(http)
            assert http.get(f"/api/v1/batches/{batch_id}").status_code == 200
            assert http.get("/api/v1/batches").status_code == 200
        assert hog.post(f"/api/v1/batches/{streamed[0]}/cancel").status_code == 202
    assert watches_of(management, f"tenant-{greedy}") == 1, "one shared watch for three streams"


@pytest.fixture
def linked_gateway(
    gateway_world: GatewayWorld,
    redis_server: redis.LocalRedis,
    management: cluster.LocalCluster,
    tmp_path: pathlib.Path,
) -> Iterator[tuple[gatewayproc.GatewayProcess, faultylink.FaultyLink]]:
    """A gateway that reaches the apiserver through a link the test can break."""
    with faultylink.link_to(
        management, workdir=tmp_path, kubeconfig=gateway_world.gateway.kubeconfig
    ) as linked:
        started = small_gateway(
            gateway_world, redis_server, tmp_path / "gateway", kubeconfig=linked.kubeconfig
        )
        started.start()
        try:
            yield started, linked.link
        finally:
            linked.link.refuse(False)
            started.stop()
    assert "Traceback" not in started.log(), started.log()[-4000:]


def missing(gateway: gatewayproc.GatewayProcess) -> list[str]:
    """What /readyz says is missing (nothing when ready)."""
    reply = httpx.get(f"{gateway.url}/readyz", timeout=10)
    if reply.status_code == 200:
        return []
    assert reply.status_code == 503, reply.text
    found: list[str] = reply.json()["missing"]
    return found


def close_code(socket: ws_client.ClientConnection) -> int | None:
    """Read until the gateway closes the WebSocket (changes sent before may come first);
    the code it closed with, None when it sent no close frame."""
    try:
        while True:
            socket.recv(timeout=90)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def test_a_broken_namespace_watch_ends_its_streams_and_the_next_subscriber_restarts_it(
    gateway_world: GatewayWorld,
    linked_gateway: tuple[gatewayproc.GatewayProcess, faultylink.FaultyLink],
) -> None:
    gateway, link = linked_gateway
    _, key = tenant_on(gateway_world, gateway, "outage")
    url = f"ws://127.0.0.1:{gateway.port}/api/v1/batches/{{}}/events"
    auth = {"Authorization": f"Bearer {key}"}
    with contextlib.ExitStack() as stack, client(gateway, key) as http:
        batch_id = submit(http)
        sse = open_stream(stack, http, batch_id)
        socket = stack.enter_context(
            ws_client.connect(url.format(batch_id), additional_headers=auth, open_timeout=30)
        )
        assert json.loads(socket.recv(timeout=30))["id"] == batch_id

        link.refuse(True)
        link.cut()
        waiting.until(
            lambda: "stream watches" in missing(gateway),
            timeout=60,
            what="/readyz names the failing stream watch",
        )
        assert close_code(socket) == 1013
        assert sse.lines is not None
        # Reading to the end returns only because the gateway ended the stream: its pings
        # (every 15 s) would keep an open one alive past any read timeout. What it sent
        # before the outage (the operator queueing the batch) may still be in the way.
        for _ in sse.lines:
            pass

        link.refuse(False)
        waiting.until(lambda: not missing(gateway), timeout=120, what="/readyz ready again")
        with ws_client.connect(
            url.format(batch_id), additional_headers=auth, open_timeout=30
        ) as again:
            assert json.loads(again.recv(timeout=30))["status"] != "Cancelled"
            assert http.post(f"/api/v1/batches/{batch_id}/cancel").status_code == 202
            # Only a new watch of the namespace can bring the change.
            waiting.until(
                lambda: json.loads(again.recv(timeout=30))["status"] == "Cancelled" or None,
                timeout=60,
                what="the cancellation, through the restarted watch",
            )
