"""`Queue`: one pool's fair priority queue, one Lua script per operation.

Every method is one round trip (`lease` with a wait polls, see there). Times are Redis's
own clock (TIME, read inside each script): lease expiry is compared across every worker
and the operator, so one host whose clock is off must not expire or keep others' leases.
Tests inject a `clock` (Unix seconds, sent to Lua as milliseconds) to expire leases by
moving it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, get_args

from imagegen import redisconn
from imagegen.api import imagebatch, tenant
from imagegen.queue import keys, lua, model

FailOutcome = Literal["requeued", "failed", "dropped"]

_Choice = TypeVar("_Choice", bound=str)
_TIERS: tuple[tenant.Tier, ...] = get_args(tenant.Tier)
_PRIORITIES: tuple[imagebatch.Priority, ...] = get_args(imagebatch.Priority)
_STATES: tuple[imagebatch.ItemState, ...] = get_args(imagebatch.ItemState)
_OUTCOMES: tuple[FailOutcome, ...] = get_args(FailOutcome)

_RECLAIM_PER_LEASE = 16
"""Expired leases each `lease` call takes back first: bounded, so one call stays short."""
_RECLAIM_PER_CALL = 500
"""Expired leases `requeue_expired` takes back per script call: it loops, each call short."""
_POLL_FIRST_SECONDS = 0.01
_POLL_MAX_SECONDS = 0.2
"""An idle worker asks at most five times a second; a busy one never waits."""


class Queue:
    """The queue of one pool (`shared` or `dedicated-<tenant>`) in one region's Redis."""

    def __init__(
        self,
        *,
        redis: redisconn.Client,
        pool: str,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if lease_seconds <= 0 or max_attempts < 1:
            raise ValueError("lease_seconds must be > 0 and max_attempts >= 1")
        self.keyspace = keys.Keyspace(pool=pool)
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._clock = clock
        self._redis = redis
        self._scripts = lua.register(client=redis)

    @property
    def channel(self) -> str:
        """The pool's sharded pub/sub channel (SSUBSCRIBE) of its items' state changes.

        Messages are JSON naming the batch: `{"batch", "item", "state", "attempts"}` for one
        item, or `{"batch", "state", "count"}` when a batch's items are enqueued or
        cancelled together (`batch_of_event` reads them). They say when to look again;
        `progress` is the truth, since pub/sub drops messages while nobody listens.
        """
        return self.keyspace.events

    async def enqueue_batch(self, *, batch: model.BatchRef, items: Sequence[model.ItemSpec]) -> int:
        """Queue a batch's items in one round trip; return how many were new.

        Items are keyed by batch uid and item id: those already known (in any state) are
        skipped, and a cancelled batch takes none, so re-running a dispatch is harmless.
        """
        if not items:
            return 0
        item_keys = [self.keyspace.item(uid=batch.uid, item_id=item.id) for item in items]
        argv: list[str | int] = [
            batch.uid,
            batch.tenant,
            batch.tier,
            batch.priority,
            batch.weight,
            self._now_ms(),
            self.channel,
        ]
        for item in items:
            argv += [item.id, json.dumps(item.payload, separators=(",", ":"))]
        added = await self._scripts.enqueue(
            keys=[
                *self.keyspace.pool_keys(),
                self.keyspace.batch(uid=batch.uid),
                self.keyspace.batch_items(uid=batch.uid),
                self.keyspace.lane(tier=batch.tier, tenant=batch.tenant),
                *item_keys,
            ],
            args=argv,
        )
        return int(added)

    async def lease(self, *, worker_id: str, wait_seconds: float = 0.0) -> model.Lease | None:
        """The next item by priority and fairness, leased to `worker_id`; None if none came.

        Waits up to `wait_seconds` by polling with a backoff from 10 ms to 200 ms: a worker
        that just finished asks again at once, an idle one costs Redis five calls a second.
        """
        deadline = time.monotonic() + wait_seconds
        delay = _POLL_FIRST_SECONDS
        while True:
            leased = await self._lease_once(worker_id=worker_id)
            remaining = deadline - time.monotonic()
            if leased is not None or remaining <= 0:
                return leased
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX_SECONDS)

    async def _lease_once(self, *, worker_id: str) -> model.Lease | None:
        token = secrets.token_hex(8)
        reply = await self._scripts.lease(
            keys=self.keyspace.pool_keys(),
            args=[
                self._now_ms(),
                self._lease_ms(),
                self.max_attempts,
                worker_id,
                token,
                _RECLAIM_PER_LEASE,
            ],
        )
        if reply is None:
            return None
        uid, item_id, tenant_name, tier, priority, payload, attempts, expires, error = reply
        return model.Lease(
            batch_uid=_text(uid),
            item_id=_text(item_id),
            tenant=_text(tenant_name),
            tier=_choice(tier, _TIERS),
            priority=_choice(priority, _PRIORITIES),
            payload=json.loads(payload),
            attempt=int(attempts),
            worker_id=worker_id,
            token=token,
            expires_at=int(expires) / 1000,
            previous_error=None if error is None else _text(error),
        )

    async def renew(self, *, lease: model.Lease) -> bool:
        """Extend the lease by `lease_seconds` from now; False if it is no longer held
        (expired and taken back, cancelled, finished by another delivery): drop the item."""
        expires = await self._scripts.renew(
            keys=[*self.keyspace.pool_keys(), self._item_key(lease)],
            args=[self._now_ms(), self._lease_ms(), lease.token],
        )
        return expires is not None

    async def complete(self, *, lease: model.Lease, result: model.Json) -> bool:
        """Record the item's result; True if stored, False if it was already finished or
        cancelled (acknowledged, and the first result stays)."""
        stored = await self._scripts.complete(
            keys=[*self.keyspace.pool_keys(), self._item_key(lease)],
            args=[json.dumps(result, separators=(",", ":"))],
        )
        return bool(stored)

    async def fail(self, *, lease: model.Lease, error: str, retryable: bool) -> FailOutcome:
        """Report a failed attempt: requeued while attempts remain and the error is
        retryable, else failed with `error` as its last error; dropped if the lease is no
        longer held."""
        outcome = await self._scripts.fail(
            keys=[*self.keyspace.pool_keys(), self._item_key(lease)],
            args=[lease.token, error, int(retryable), self.max_attempts],
        )
        return _choice(outcome, _OUTCOMES)

    async def release(self, *, lease: model.Lease) -> bool:
        """Hand the item back unfinished, as a worker that is stopping does: it is queued
        again in its old place and this lease does not count as an attempt. False if the
        lease is no longer held (nothing to hand back)."""
        released = await self._scripts.release(
            keys=[*self.keyspace.pool_keys(), self._item_key(lease)], args=[lease.token]
        )
        return bool(released)

    async def requeue_expired(self, *, now: float | None = None) -> int:
        """Take back every lease expired at `now` (default: the clock); return how many.

        Each goes back to its lane keeping its place, or fails with "lease expired" once it
        has had `max_attempts` leases. `lease` also does this for a few at a time.
        """
        now_ms = self._now_ms() if now is None else str(round(now * 1000))
        total = 0
        while True:
            taken = int(
                await self._scripts.reclaim(
                    keys=self.keyspace.pool_keys(),
                    args=[now_ms, self.max_attempts, _RECLAIM_PER_CALL],
                )
            )
            total += taken
            if taken < _RECLAIM_PER_CALL:
                return total

    async def cancel_batch(self, *, batch_uid: str) -> int:
        """Cancel the batch's queued and running items; return how many were cancelled.

        Queued items leave their lanes; running ones lose their lease, so the worker's
        renew fails and its completion is acknowledged and dropped. Later enqueues of the
        batch add nothing; finished items keep their results.
        """
        return int(
            await self._scripts.cancel(
                keys=[*self.keyspace.pool_keys(), *self._batch_keys(batch_uid)], args=[]
            )
        )

    async def cancel_items(
        self, *, batch_uid: str, item_ids: Sequence[str], running_too: bool
    ) -> int:
        """Cancel some of the batch's items, queued ones only or running ones as well;
        return how many were cancelled. The batch goes on: its other items are untouched
        and a later enqueue still adds new ones. For a failover's two regions: what one
        finished, the other need not make."""
        if not item_ids:
            return 0
        items = [self.keyspace.item(uid=batch_uid, item_id=item_id) for item_id in item_ids]
        return int(
            await self._scripts.cancel_items(
                keys=[*self.keyspace.pool_keys(), self.keyspace.batch(uid=batch_uid), *items],
                args=["1" if running_too else "0"],
            )
        )

    async def forget_batch(self, *, batch_uid: str) -> int:
        """Delete every key of the batch and its items; return how many items went.

        For when the ImageBatch itself is gone. Afterwards the batch is unknown: a worker
        still holding an item is told to drop it, and an enqueue would start afresh.
        """
        return int(
            await self._scripts.forget(
                keys=[*self.keyspace.pool_keys(), *self._batch_keys(batch_uid)], args=[]
            )
        )

    async def progress(self, *, batch_uid: str) -> model.BatchProgress:
        """Counts and per-item states of the batch, read atomically (all zero if unknown)."""
        fields, rows = await self._scripts.progress(
            keys=[*self.keyspace.pool_keys(), *self._batch_keys(batch_uid)], args=[]
        )
        flat = [_text(value) for value in fields]
        batch = dict(zip(flat[::2], flat[1::2], strict=True))
        return model.BatchProgress(
            uid=batch_uid,
            total=int(batch.get("total", 0)),
            queued=int(batch.get("Queued", 0)),
            running=int(batch.get("Running", 0)),
            succeeded=int(batch.get("Succeeded", 0)),
            failed=int(batch.get("Failed", 0)),
            cancelled=int(batch.get("Cancelled", 0)),
            cancel_requested=batch.get("cancelled") == "1",
            items=tuple(_item_progress(row) for row in rows),
        )

    async def in_flight(self) -> int:
        """Items leased to workers right now (expired leases included until reclaimed)."""
        count: int = await self._redis.zcard(self.keyspace.leases)
        return count

    async def depth(self) -> dict[model.DepthKey, model.LaneDepth]:
        """Queued items per (tenant, tier, priority) with the oldest one's age; lanes with
        nothing queued are absent."""
        rows = await self._scripts.depth(keys=self.keyspace.pool_keys(), args=[self._now_ms()])
        return {
            (
                _text(tenant_name),
                _choice(tier, _TIERS),
                _choice(priority, _PRIORITIES),
            ): model.LaneDepth(queued=int(queued), oldest_age_seconds=int(age_ms) / 1000)
            for tenant_name, tier, priority, queued, age_ms in rows
        }

    def _item_key(self, lease: model.Lease) -> str:
        return self.keyspace.item(uid=lease.batch_uid, item_id=lease.item_id)

    def _batch_keys(self, batch_uid: str) -> tuple[str, str]:
        return self.keyspace.batch(uid=batch_uid), self.keyspace.batch_items(uid=batch_uid)

    def _now_ms(self) -> str:
        """The caller's time for a script, or '' for the script to read Redis TIME."""
        return "" if self._clock is None else str(round(self._clock() * 1000))

    def _lease_ms(self) -> int:
        return round(self.lease_seconds * 1000)


def batch_of_event(data: bytes | str) -> str | None:
    """The uid of the batch a channel message names, or None for one naming none (or not
    a message of ours)."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    batch = message.get("batch") if isinstance(message, dict) else None
    return batch if isinstance(batch, str) and batch else None


def _item_progress(row: list[Any]) -> model.ItemProgress:
    item_id, state, attempts, result, error = row
    return model.ItemProgress(
        id=_text(item_id),
        state=_choice(state, _STATES),
        attempts=int(attempts),
        result=None if result is None else json.loads(result),
        error=None if error is None else _text(error),
    )


def _text(value: bytes | str) -> str:
    """A reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def _choice(value: bytes | str, choices: tuple[_Choice, ...]) -> _Choice:
    """A reply that must be one of `choices` (the Literal type's values)."""
    text = _text(value)
    for choice in choices:
        if choice == text:
            return choice
    raise ValueError(f"unexpected reply {text!r} from Redis, expected one of {choices}")
