"""Webhook delivery from the Redis outbox to a receiver on 127.0.0.1: signed, retried on a
bounded schedule, stopped by 410, refused by the SSRF guard at send time, and durable
across dispatcher restarts. Real redis-server, real apiserver for the signing secrets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence

import lightkube
import pytest
import redis.asyncio as aioredis
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen.api import meta
from imagegen.gateway.webhooks import (
    dispatcher,
    events,
    keys,
    outbox,
    schedule,
    secretstore,
    signing,
    ssrf,
)
from imagegen.localcluster.process import free_port
from tests import builders
from tests.integration import waiting
from tests.integration.conftest import SCRATCH_DB
from tests.integration.webhookreceiver import Answer, Receiver

TENANT = "acme"
SECRET = signing.new_secret()
LOOPBACK = ["127.0.0.1"]


def fast(
    *, max_attempts: int = 3, base_seconds: float = 0.2, cap_seconds: float = 10
) -> dispatcher.Options:
    """A schedule of tenths of seconds, so retries happen while the test watches."""
    return dispatcher.Options(
        policy=schedule.RetryPolicy(
            max_attempts=max_attempts, base_seconds=base_seconds, cap_seconds=cap_seconds
        ),
        timeout_seconds=5,
        lease_seconds=2,
        block_ms=200,
        retry_poll_seconds=0.05,
    )


@pytest.fixture(scope="module")
def secrets_namespace(kube: lightkube.Client) -> Iterator[str]:
    """A namespace holding the published signing secrets, as the operator writes them."""
    name = f"webhooks-{uuid.uuid4().hex[:8]}"
    kube.create(core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=name)))
    kube.create(
        core_v1.Secret(
            metadata=meta_v1.ObjectMeta(name=meta.WEBHOOK_SECRETS, namespace=name),
            data={TENANT: base64.b64encode(SECRET.encode()).decode()},
        )
    )
    yield name
    kube.delete(core_v1.Namespace, name)


class Dispatchers:
    """Dispatcher processes of a test, as tasks that can be stopped like a crash would."""

    def __init__(self, *, redis: aioredis.Redis, kube: lightkube.AsyncClient, namespace: str):
        self.redis = redis
        self._kube = kube
        self._namespace = namespace
        self._tasks: list[asyncio.Task[None]] = []

    def start(
        self,
        *,
        consumer: str = "d1",
        options: dispatcher.Options | None = None,
        resolver: ssrf.Resolver | None = None,
    ) -> asyncio.Task[None]:
        running = dispatcher.Dispatcher(
            redis=self.redis,
            secrets=secretstore.SigningSecrets(kube=self._kube, namespace=self._namespace),
            allowlist=LOOPBACK,
            consumer=consumer,
            options=options or fast(),
            resolver=resolver,
        )
        task = asyncio.create_task(running.run())
        self._tasks.append(task)
        return task

    async def stop(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_all(self) -> None:
        for task in self._tasks:
            await self.stop(task)


@pytest.fixture
async def dispatchers(
    scratch_redis: aioredis.Redis,
    management_async: lightkube.AsyncClient,
    secrets_namespace: str,
) -> AsyncIterator[Dispatchers]:
    started = Dispatchers(redis=scratch_redis, kube=management_async, namespace=secrets_namespace)
    yield started
    await started.stop_all()


async def submit(redis: aioredis.Redis, url: str) -> events.Event:
    """Append the batch.completed event of a fresh batch whose webhook is `url`."""
    body = builders.succeeded_batch_with_webhook(
        f"b-{uuid.uuid4().hex[:6]}", tenant=TENANT, url=url
    )
    (event,) = events.for_batch(body, now=datetime.datetime.now(datetime.UTC))
    assert await outbox.append(redis, event)
    return event


async def state_of(redis: aioredis.Redis, event: events.Event, *states: str) -> dict[str, str]:
    """The delivery record once it is in one of `states`."""

    async def reached() -> dict[str, str] | None:
        found = await outbox.record(redis, event.msg_id)
        return found if found.get("state") in states else None

    return await waiting.until_async(reached, seconds=30, what=f"{event.msg_id} {states}")


async def test_a_delivery_is_signed_so_the_receiver_can_verify_it(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    dispatchers.start()
    event = await submit(dispatchers.redis, webhook_receiver.url)

    record = await state_of(dispatchers.redis, event, "delivered")

    (got,) = webhook_receiver.received
    signing.verify(secret=SECRET, headers=got.headers, body=got.body, now=int(time.time()))
    assert got.headers["webhook-id"] == event.msg_id
    assert got.headers["Content-Type"] == "application/json"
    assert got.body == event.body
    assert (record["attempts"], record["status"]) == ("1", "200")
    assert await dispatchers.redis.xlen(keys.stream()) == 0


async def test_a_receiver_that_is_down_is_retried_then_delivered_once_it_is_back(
    dispatchers: Dispatchers,
) -> None:
    later = Receiver(port=free_port())
    dispatchers.start(options=fast(max_attempts=50, base_seconds=0.3, cap_seconds=0.5))
    event = await submit(dispatchers.redis, later.url)

    async def failed_twice() -> dict[str, str] | None:
        found = await outbox.record(dispatchers.redis, event.msg_id)
        return found if int(found.get("attempts", 0)) >= 2 else None

    down = await waiting.until_async(failed_twice, seconds=30, what="two failed attempts")
    await later.start()
    try:
        record = await state_of(dispatchers.redis, event, "delivered")
    finally:
        await later.stop()

    assert down["state"] == "retrying"
    assert "ClientConnectorError" in down["error"]
    assert [r.headers["webhook-id"] for r in later.received] == [event.msg_id]
    assert int(record["attempts"]) > int(down["attempts"])


async def test_a_410_disables_the_endpoint_and_nothing_more_is_sent(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    webhook_receiver.script = [Answer(status=410)]
    dispatchers.start()
    first = await submit(dispatchers.redis, webhook_receiver.url)
    gone = await state_of(dispatchers.redis, first, "disabled")

    second = await submit(dispatchers.redis, webhook_receiver.url)
    skipped = await state_of(dispatchers.redis, second, "disabled")

    assert gone["status"] == "410"
    assert [r.status for r in webhook_receiver.received] == [410]
    assert skipped["attempts"] == "0"
    assert await outbox.is_disabled(dispatchers.redis, tenant=TENANT, url=webhook_receiver.url)


async def test_retry_after_is_honoured(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    webhook_receiver.script = [Answer(status=503, headers={"Retry-After": "2"})]
    dispatchers.start()
    event = await submit(dispatchers.redis, webhook_receiver.url)

    await state_of(dispatchers.redis, event, "delivered")

    refused, delivered = webhook_receiver.received
    # The backoff alone would have waited at most 0.2 s.
    assert delivered.at - refused.at >= 2
    assert (refused.status, delivered.status) == (503, 200)


async def test_an_exhausted_schedule_is_recorded_as_failed(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    webhook_receiver.script = [Answer(status=500)] * 3
    dispatchers.start()
    event = await submit(dispatchers.redis, webhook_receiver.url)

    record = await state_of(dispatchers.redis, event, "failed")

    assert [r.status for r in webhook_receiver.received] == [500, 500, 500]
    assert record["attempts"] == "3"
    assert record["error"] == "gave up after 3 attempts: HTTP 500"
    assert await dispatchers.redis.xlen(keys.stream()) == 0
    assert await dispatchers.redis.zcard(keys.retries()) == 0


async def test_a_dispatcher_restarted_mid_retry_delivers_once(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    webhook_receiver.script = [Answer(status=503, headers={"Retry-After": "1"})]
    first = dispatchers.start(consumer="first")
    event = await submit(dispatchers.redis, webhook_receiver.url)
    await state_of(dispatchers.redis, event, "retrying")
    await dispatchers.stop(first)

    dispatchers.start(consumer="second")
    await state_of(dispatchers.redis, event, "delivered")
    await asyncio.sleep(1)  # room for a duplicate, were there one

    assert [r.status for r in webhook_receiver.received] == [503, 200]
    assert [r.headers["webhook-id"] for r in webhook_receiver.ok()] == [event.msg_id]


async def test_an_entry_a_dead_dispatcher_left_pending_is_claimed_and_delivered(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    event = await submit(dispatchers.redis, webhook_receiver.url)
    await outbox.ensure_group(dispatchers.redis)
    # A dispatcher that read the entry and died before settling it.
    (taken,) = await outbox.read_new(dispatchers.redis, consumer="dead", count=1, block_ms=100)
    assert taken.msg_id == event.msg_id

    dispatchers.start(consumer="alive")
    await state_of(dispatchers.redis, event, "delivered")

    assert [r.headers["webhook-id"] for r in webhook_receiver.ok()] == [event.msg_id]
    pending = await dispatchers.redis.xpending(keys.stream(), keys.GROUP)
    assert pending["pending"] == 0


class PointableResolver:
    """A DNS stand-in whose answers the test changes, as an attacker's DNS would."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        if host not in self.answers:
            raise OSError(f"{host}: unknown")
        return self.answers[host]


async def test_the_checked_address_is_the_one_connected_to_with_the_hosts_name(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    dns = PointableResolver()
    dns.answers["hooks.test"] = ["127.0.0.1"]
    dispatchers.start(resolver=dns)
    event = await submit(
        dispatchers.redis, f"http://hooks.test:{webhook_receiver.port}/hooks/imagegen"
    )

    await state_of(dispatchers.redis, event, "delivered")

    (got,) = webhook_receiver.received
    assert got.headers["Host"] == f"hooks.test:{webhook_receiver.port}"


async def test_a_host_that_resolves_elsewhere_after_submit_is_refused_at_send_time(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    dns = PointableResolver()
    dns.answers["hooks.test"] = ["127.0.0.1"]
    url = f"http://hooks.test:{webhook_receiver.port}/hooks/imagegen"
    await ssrf.check_url(url, allowlist=LOOPBACK, resolver=dns)  # what submit checks: fine
    dns.answers["hooks.test"] = ["10.0.0.1"]  # rebinding to an internal address
    dispatchers.start(resolver=dns)
    event = await submit(dispatchers.redis, url)

    record = await state_of(dispatchers.redis, event, "failed")

    assert record["error"] == (
        "refused: hooks.test resolves to 10.0.0.1, which is a private address;"
        " not allowed for webhooks"
    )
    assert webhook_receiver.received == []


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest", "http://10.0.0.1/hook", "http://[::1]:9/hook"],
)
async def test_an_internal_url_written_straight_into_a_cr_is_refused_at_send_time(
    dispatchers: Dispatchers, url: str
) -> None:
    dispatchers.start()
    event = await submit(dispatchers.redis, url)

    record = await state_of(dispatchers.redis, event, "failed")

    assert record["error"].startswith("refused: ")
    assert record["attempts"] == "0"


async def test_a_stopped_dispatcher_stops_reading_even_when_stopped_mid_read(
    dispatchers: Dispatchers,
) -> None:
    options = dataclasses.replace(fast(), block_ms=5000, error_backoff_seconds=0.05)
    task = dispatchers.start(consumer="stopping", options=options)

    async def blocked_readers() -> list[str]:
        # This test's database only: the session's gateway blocks reading its own outbox
        # in another database of the same server.
        clients = await dispatchers.redis.client_list()
        return [c["cmd"] for c in clients if "b" in c["flags"] and c["db"] == str(SCRATCH_DB)]

    await waiting.until_async(blocked_readers, seconds=30, what="the dispatcher blocked reading")
    await dispatchers.stop(task)  # well inside its 5 s blocking read
    await asyncio.sleep(1)

    # A loop that survived its cancellation would be blocked reading again by now.
    assert await blocked_readers() == []


async def test_an_internationalised_host_name_is_delivered_under_its_idna_name(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    dns = PointableResolver()
    dns.answers["xn--bcher-kva.test"] = ["127.0.0.1"]  # DNS knows names in their IDNA form
    dispatchers.start(resolver=dns)
    event = await submit(
        dispatchers.redis, f"http://Bücher.test:{webhook_receiver.port}/hooks/imagegen"
    )

    await state_of(dispatchers.redis, event, "delivered")

    (got,) = webhook_receiver.received
    assert got.headers["Host"] == f"xn--bcher-kva.test:{webhook_receiver.port}"


async def test_a_host_that_fails_to_resolve_for_a_moment_is_retried_then_delivered_once(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    asked: list[str] = []

    async def flaky(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        if len(asked) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return ["127.0.0.1"]

    dispatchers.start(resolver=flaky)
    event = await submit(
        dispatchers.redis, f"http://hooks.test:{webhook_receiver.port}/hooks/imagegen"
    )

    record = await state_of(dispatchers.redis, event, "delivered")
    await asyncio.sleep(1)  # room for a duplicate, were there one

    assert asked == ["hooks.test", "hooks.test"]
    assert record["attempts"] == "2"
    assert [r.headers["webhook-id"] for r in webhook_receiver.received] == [event.msg_id]


@pytest.mark.parametrize(
    "bad_url",
    ["http://\u0080x.test/hook", "http://" + "a" * 64 + ".test/hook", "http://xn--a.test/hook"],
)
async def test_a_host_that_cannot_be_encoded_fails_alone_and_delivery_goes_on(
    dispatchers: Dispatchers, webhook_receiver: Receiver, bad_url: str
) -> None:
    task = dispatchers.start()  # the machine's own resolver, which encodes the name itself
    bad = await submit(dispatchers.redis, bad_url)
    good = await submit(dispatchers.redis, webhook_receiver.url)

    refused = await state_of(dispatchers.redis, bad, "failed")
    await state_of(dispatchers.redis, good, "delivered")

    assert refused["error"].startswith("refused: ")
    assert not task.done()


async def test_an_unreadable_outbox_entry_is_dropped_alone_and_delivery_goes_on(
    dispatchers: Dispatchers, webhook_receiver: Receiver
) -> None:
    await outbox.ensure_group(dispatchers.redis)
    # Written by another writer or version: no url, no body.
    unreadable = {"msg_id": "msg_x", "type": "batch.completed", "tenant": TENANT}
    bad_id = await dispatchers.redis.xadd(keys.stream(), unreadable)
    task = dispatchers.start()
    good = await submit(dispatchers.redis, webhook_receiver.url)

    await state_of(dispatchers.redis, good, "delivered")
    dropped = await waiting.until_async(
        lambda: outbox.record(dispatchers.redis, f"malformed-{bad_id}"),
        seconds=30,
        what="the unreadable entry settled",
    )

    assert (dropped["state"], dropped["error"]) == ("failed", "KeyError: 'body'")
    assert await dispatchers.redis.xlen(keys.stream()) == 0
    assert not task.done()
