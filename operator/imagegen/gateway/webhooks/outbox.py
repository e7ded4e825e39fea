"""The outbox in Redis: append events exactly once, read them as a consumer group, and
settle each attempt atomically (one Lua call per step, all keys in one slot).

Works with clients that decode responses and with ones that return bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from redis import exceptions as redis_errors

from imagegen import redisconn
from imagegen.gateway.webhooks import events, keys

EMITTED_TTL_SECONDS = 30 * 24 * 3600
"""How long the once-only marker of an event lives; batches older than this produce no
events (see producer.MAX_BATCH_AGE)."""
RECORD_TTL_SECONDS = 7 * 24 * 3600
"""How long the outcome of a delivery stays readable."""
DISABLED_TTL_SECONDS = 90 * 24 * 3600
"""How long an endpoint that answered 410 stays disabled."""

# KEYS: emitted marker, stream. ARGV: marker ttl, then the entry's field/value pairs.
_APPEND = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
end
return false
"""

# KEYS: stream, retries, attempts, record. ARGV: group, entry id, due ('' = final),
# state, attempts, status, error, now, record ttl.
_SETTLE = """
if ARGV[3] == '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('HSET', KEYS[4], 'state', ARGV[4], 'attempts', ARGV[5], 'status', ARGV[6],
           'error', ARGV[7], 'updated', ARGV[8])
redis.call('EXPIRE', KEYS[4], ARGV[9])
return 1
"""

# KEYS: retries. ARGV: now, lease end, limit. Due entries, each leased until lease end.
_TAKE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return ids
"""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Entry:
    """One outbox entry as read back for delivery."""

    entry_id: str
    msg_id: str
    type: str
    tenant: str
    url: str
    body: bytes
    malformed: str = ""
    """Why the entry could not be read whole (another writer, another version): such an
    entry is settled as failed, alone, and never sent."""


async def append(client: redisconn.Client, event: events.Event) -> bool:
    """Append the event unless it was appended before; True when it was appended now."""
    fields = {
        "msg_id": event.msg_id,
        "type": event.type,
        "tenant": event.tenant,
        "url": event.url,
        "body": event.body,
    }
    flat: list[Any] = [EMITTED_TTL_SECONDS]
    for name, value in fields.items():
        flat += [name, value]
    marker = keys.emitted(batch_uid=event.batch_uid, event_type=event.type, step=event.step)
    added = await client.eval(_APPEND, 2, marker, keys.stream(), *flat)
    return added is not None


async def depth(client: redisconn.Client) -> int:
    """Entries not settled for good: new, in flight, or awaiting a retry (a final settle
    deletes the entry from the stream; a retry leaves it there)."""
    return int(await client.xlen(keys.stream()))


async def ensure_group(client: redisconn.Client) -> None:
    """Create the dispatchers' consumer group (and the stream) if missing."""
    try:
        await client.xgroup_create(keys.stream(), keys.GROUP, id="0", mkstream=True)
    except redis_errors.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def read_new(
    client: redisconn.Client, *, consumer: str, count: int, block_ms: int
) -> list[Entry]:
    """Entries no dispatcher has read yet; they stay pending for `consumer` until settled."""
    reply: Any = await client.xreadgroup(
        keys.GROUP, consumer, {keys.stream(): ">"}, count=count, block=block_ms
    )
    return [e for _, entries in reply or () for e in _entries(entries)]


async def claim_abandoned(
    client: redisconn.Client, *, consumer: str, min_idle_ms: int, count: int
) -> list[Entry]:
    """Pending entries that a dispatcher read and never settled for `min_idle_ms` (it
    died mid-attempt), now pending for `consumer`."""
    reply = await client.xautoclaim(
        keys.stream(), keys.GROUP, consumer, min_idle_time=min_idle_ms, start_id="0", count=count
    )
    return list(_entries(reply[1]))


async def take_due(
    client: redisconn.Client, *, now: float, lease_seconds: float, limit: int
) -> list[Entry]:
    """Retries that are due, each leased so that no other dispatcher takes it meanwhile;
    one whose entry vanished is dropped from the schedule."""
    ids = await client.eval(_TAKE_DUE, 1, keys.retries(), now, now + lease_seconds, limit)
    found: list[Entry] = []
    for raw_id in ids:
        entry_id = _text(raw_id)
        rows = await client.xrange(keys.stream(), min=entry_id, max=entry_id)
        if rows:
            found.extend(_entries(rows))
        else:
            await client.zrem(keys.retries(), entry_id)
    return found


async def attempts_made(client: redisconn.Client, entry_id: str) -> int:
    """Attempts made so far on an entry (0 before the first)."""
    value = await client.hget(keys.attempts(), entry_id)
    return int(_text(value)) if value is not None else 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """How an attempt ended, and what comes next."""

    state: str
    """delivered, retrying, failed or disabled."""
    attempts: int
    status: int | None = None
    """HTTP status of the last attempt, when there was a response."""
    error: str = ""
    due: float | None = None
    """When retrying: Unix time of the next attempt."""


async def settle(client: redisconn.Client, *, entry: Entry, outcome: Outcome, now: float) -> None:
    """Record the outcome and either finish the entry or schedule its next attempt."""
    await client.eval(
        _SETTLE,
        4,
        keys.stream(),
        keys.retries(),
        keys.attempts(),
        keys.delivery(entry.msg_id),
        keys.GROUP,
        entry.entry_id,
        "" if outcome.due is None else repr(outcome.due),
        outcome.state,
        outcome.attempts,
        "" if outcome.status is None else outcome.status,
        outcome.error,
        repr(now),
        RECORD_TTL_SECONDS,
    )


async def record(client: redisconn.Client, msg_id: str) -> dict[str, str]:
    """The latest outcome of a message: state, attempts, status, error, updated."""
    raw = await client.hgetall(keys.delivery(msg_id))
    return {_text(k): _text(v) for k, v in raw.items()}


async def disable(client: redisconn.Client, *, tenant: str, url: str, now: float) -> None:
    """Stop delivering to an endpoint that said it is gone."""
    await client.set(keys.disabled(tenant=tenant, url=url), repr(now), ex=DISABLED_TTL_SECONDS)


async def is_disabled(client: redisconn.Client, *, tenant: str, url: str) -> bool:
    """Whether the endpoint answered 410 before."""
    return bool(await client.exists(keys.disabled(tenant=tenant, url=url)))


def _entries(rows: Any) -> list[Entry]:
    found = []
    for raw_id, raw_fields in rows:
        entry_id = _text(raw_id)
        if not raw_fields:
            continue  # deleted after it was read: nothing left to deliver
        try:
            found.append(_entry(entry_id, raw_fields))
        except (KeyError, UnicodeDecodeError) as error:
            # One unreadable entry must not stop the dispatcher for every tenant.
            found.append(
                Entry(
                    entry_id=entry_id,
                    msg_id=f"malformed-{entry_id}",
                    type="",
                    tenant="",
                    url="",
                    body=b"",
                    malformed=f"{type(error).__name__}: {error}",
                )
            )
    return found


def _entry(entry_id: str, raw_fields: Any) -> Entry:
    fields = {_text(k): v for k, v in raw_fields.items()}
    body = fields["body"]
    return Entry(
        entry_id=entry_id,
        msg_id=_text(fields["msg_id"]),
        type=_text(fields["type"]),
        tenant=_text(fields["tenant"]),
        url=_text(fields["url"]),
        body=body if isinstance(body, bytes) else str(body).encode(),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
