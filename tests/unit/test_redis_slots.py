"""Every Lua call keeps all its keys in one Redis Cluster slot, and pools spread over slots.

Each caller of a script (the queue's operations, the rate limiter, the webhook outbox) is
run against a recorder that stands in for the client: it keeps the keys each script call
would send and answers nothing, so no server is needed. The test fails when a script is
added that no caller here reaches, so a new script cannot skip the check. (Idempotency
records are one key per command, SET/GET/DEL, with no script.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from redis import crc

from imagegen import ratelimit
from imagegen.gateway import ratelimiting, tenants
from imagegen.gateway.webhooks import events, outbox
from imagegen.queue import core, keys, lua, model


class _StopError(Exception):
    """Raised by the recorder after recording: the caller's reply handling is not tested."""


@dataclasses.dataclass
class _Recorder:
    """Takes the place of a redis-py client for script calls (register_script and eval)."""

    calls: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)

    def register_script(self, source: str) -> Callable[..., Awaitable[Any]]:
        async def call(keys: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
            self.calls.append((source, list(keys)))
            raise _StopError

        return call

    async def eval(self, source: str, numkeys: int, *keys_and_args: Any) -> Any:
        self.calls.append((source, [str(key) for key in keys_and_args[:numkeys]]))
        raise _StopError


def _slot(key: str) -> int:
    return int(crc.key_slot(key.encode()))


async def _record(recorder: _Recorder, *calls: Callable[[], Awaitable[object]]) -> None:
    for call in calls:
        with pytest.raises(_StopError):
            await call()


def _assert_one_slot_per_call(recorder: _Recorder) -> None:
    for source, called_keys in recorder.calls:
        assert called_keys, f"a script call with no keys: {source[:60]!r}"
        slots = {_slot(key) for key in called_keys}
        assert len(slots) == 1, f"keys in slots {sorted(slots)}: {called_keys}"


@pytest.mark.parametrize("pool", [keys.SHARED, keys.dedicated(tenant="acme-images")])
async def test_every_queue_script_call_stays_in_its_pools_slot(pool: str) -> None:
    recorder = _Recorder()
    queue = core.Queue(redis=recorder, pool=pool)  # type: ignore[arg-type]
    batch = model.BatchRef(uid="7f1c6d2e-uid", tenant="acme", tier="priority", priority="high")
    items = [model.ItemSpec(id=f"item-{n}", payload={"prompt": "p"}) for n in range(20)]
    held = model.Lease(
        batch_uid=batch.uid,
        item_id="item-3",
        tenant=batch.tenant,
        tier=batch.tier,
        priority=batch.priority,
        payload={},
        attempt=1,
        worker_id="w",
        token="t",
        expires_at=0.0,
    )
    await _record(
        recorder,
        lambda: queue.enqueue_batch(batch=batch, items=items),
        lambda: queue.lease(worker_id="w"),
        lambda: queue.renew(lease=held),
        lambda: queue.complete(lease=held, result={}),
        lambda: queue.fail(lease=held, error="e", retryable=True),
        lambda: queue.release(lease=held),
        lambda: queue.requeue_expired(),
        lambda: queue.cancel_batch(batch_uid=batch.uid),
        lambda: queue.cancel_items(
            batch_uid=batch.uid, item_ids=["item-1", "item-2"], running_too=True
        ),
        lambda: queue.forget_batch(batch_uid=batch.uid),
        lambda: queue.progress(batch_uid=batch.uid),
        lambda: queue.depth(),
    )
    every_script = {lua.source(field.name) for field in dataclasses.fields(lua.Scripts)}
    assert {source for source, _ in recorder.calls} == every_script
    _assert_one_slot_per_call(recorder)
    assert {_slot(key) for _, called in recorder.calls for key in called} == {
        _slot(queue.keyspace.seq)
    }


async def test_the_rate_limit_call_of_a_submission_stays_in_the_tenants_slot() -> None:
    recorder = _Recorder()
    limiter = ratelimit.RateLimiter(redis=recorder)  # type: ignore[arg-type]
    tenant = tenants.TenantView(
        name="acme",
        namespace="tenant-acme",
        requests_per_minute=60,
        burst=10,
        images_per_minute=600,
    )
    await _record(recorder, lambda: limiter.decide(ratelimiting.limits(tenant, images=100)))
    assert [source for source, _ in recorder.calls] == [ratelimit.GCRA_LUA]
    assert len(recorder.calls[0][1]) == 2
    _assert_one_slot_per_call(recorder)


async def test_every_outbox_script_call_stays_in_the_outbox_slot() -> None:
    recorder = _Recorder()
    event = events.Event(
        type="batch.completed",
        step=0,
        batch_uid="uid-1",
        tenant="acme",
        url="https://hooks.example/x",
        msg_id="msg_1",
        body=b"{}",
    )
    entry = outbox.Entry(
        entry_id="1-0", msg_id="msg_1", type=event.type, tenant="acme", url=event.url, body=b"{}"
    )
    await _record(
        recorder,
        lambda: outbox.append(recorder, event),  # type: ignore[arg-type]
        lambda: outbox.take_due(recorder, now=1.0, lease_seconds=30, limit=10),  # type: ignore[arg-type]
        lambda: outbox.settle(  # type: ignore[arg-type]
            recorder, entry=entry, outcome=outbox.Outcome(state="delivered", attempts=1), now=1.0
        ),
    )
    scripts = {
        value for value in vars(outbox).values() if isinstance(value, str) and "redis.call" in value
    }
    assert {source for source, _ in recorder.calls} == scripts
    _assert_one_slot_per_call(recorder)


def test_pools_spread_over_the_primaries_of_a_cluster() -> None:
    """Each pool is one slot (one primary): 60 dedicated pools and the shared one land on
    every primary of a 6-primary cluster, none with more than twice its share."""
    primaries = 6
    per_primary = [0] * primaries
    pools = [keys.SHARED, *(keys.dedicated(tenant=f"tenant-{n}") for n in range(60))]
    for pool in pools:
        slot = _slot(keys.Keyspace(pool=pool).seq)
        # redis-cli --cluster create gives each primary an equal run of the 16384 slots.
        per_primary[min(slot * primaries // 16384, primaries - 1)] += 1
    assert min(per_primary) >= 1
    assert max(per_primary) <= 2 * len(pools) / primaries
