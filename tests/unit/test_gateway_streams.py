"""Stream caps per tenant and per process, and the latest-state mailbox of a shared watch."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from imagegen.gateway import problems, streamcaps, streamhub
from imagegen.gateway.routes import events


def test_a_tenant_past_its_cap_is_refused_with_429_and_retry_after() -> None:
    caps = streamcaps.StreamCaps(per_tenant=2, per_process=10)
    caps.acquire("acme")
    caps.acquire("acme")
    with pytest.raises(problems.Problem) as refused:
        caps.acquire("acme")
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == str(streamcaps.RETRY_AFTER_SECONDS)
    caps.acquire("other")  # another tenant is not held back by acme's streams


def test_the_process_cap_holds_across_tenants() -> None:
    caps = streamcaps.StreamCaps(per_tenant=5, per_process=3)
    for tenant in ("a", "b", "c"):
        caps.acquire(tenant)
    with pytest.raises(problems.Problem, match="as many streams"):
        caps.acquire("d")


def test_a_released_slot_frees_its_place_once() -> None:
    caps = streamcaps.StreamCaps(per_tenant=1, per_process=10)
    slot = caps.acquire("acme")
    slot.release()
    slot.release()
    assert caps.total() == 0
    with caps.open("acme"):
        assert caps.total() == 1
    assert caps.total() == 0


async def test_a_mailbox_keeps_only_the_latest_state() -> None:
    box = streamhub.Mailbox()
    box.put(("MODIFIED", {"v": 1}))
    box.put(("MODIFIED", {"v": 2}))
    assert await box.get() == ("MODIFIED", {"v": 2})
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    box.put(("DELETED", {}))
    assert await asyncio.wait_for(waiting, 1) == ("DELETED", {})


async def test_an_ended_mailbox_raises_for_its_waiter_and_every_later_get() -> None:
    box = streamhub.Mailbox()
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.end(streamhub.WatchEndedError("the watch of tenant-a ended", gave_up=True))
    with pytest.raises(streamhub.WatchEndedError) as ended:
        await asyncio.wait_for(waiting, 1)
    assert ended.value.gave_up
    box.put(("MODIFIED", {"v": 3}))
    with pytest.raises(streamhub.WatchEndedError):
        await asyncio.wait_for(box.get(), 1)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (None, 1000),
        (streamhub.WatchEndedError("the watch gave up", gave_up=True), 1013),
        (streamhub.WatchEndedError("a bug ended the watch", gave_up=False), 1011),
        (httpx2.ConnectError("the apiserver is down"), 1013),
    ],
    ids=["terminal-phase", "watch-gave-up", "watch-died", "read-failed"],
)
def test_a_websocket_closes_with_the_code_its_ending_deserves(
    error: BaseException | None, code: int
) -> None:
    assert events.close_code(error) == code
