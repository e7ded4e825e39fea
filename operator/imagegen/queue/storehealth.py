"""Object-store trouble, as a pool's workers see it, shared with the operator through the
region's Redis: one expiring key per pool (`keys.Keyspace.store_trouble`).

Workers set it on every failed try (at most once per REPORT_SECONDS each) and delete it on
their next success; a key no worker refreshes lapses after TROUBLE_TTL_SECONDS, so a
pool whose workers all died does not show a stale outage forever. Each report and each
clearing is announced on the pool's channel (a message naming no batch): the operator's
reporter then looks at every batch of the pool, since items wait without changing state
while the store is away.
"""

from __future__ import annotations

import dataclasses
import json

from imagegen import redisconn
from imagegen.queue import keys

TROUBLE_TTL_SECONDS = 60
"""A report not refreshed for this long is gone."""
_ANNOUNCEMENT = json.dumps({"store": "changed"})
"""What the pool's channel carries when its store trouble is reported or cleared."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Trouble:
    """The latest failure: which store (URL and endpoint, never credentials) and why."""

    store: str
    reason: str
    """`base.Reason`: Unreachable, AccessDenied, NotFound or Refused."""
    detail: str


async def report(*, redis: redisconn.Client, pool: str, trouble: Trouble) -> None:
    """Record `trouble` for the pool, expiring after TROUBLE_TTL_SECONDS."""
    keyspace = keys.Keyspace(pool=pool)
    document = json.dumps(dataclasses.asdict(trouble))
    await redis.set(keyspace.store_trouble, document, ex=TROUBLE_TTL_SECONDS)
    await redis.spublish(keyspace.events, _ANNOUNCEMENT)


async def clear(*, redis: redisconn.Client, pool: str) -> None:
    """The store answers again."""
    keyspace = keys.Keyspace(pool=pool)
    await redis.delete(keyspace.store_trouble)
    await redis.spublish(keyspace.events, _ANNOUNCEMENT)


async def read(*, redis: redisconn.Client, pool: str) -> Trouble | None:
    """The pool's current trouble, or None."""
    raw = await redis.get(keys.Keyspace(pool=pool).store_trouble)
    if raw is None:
        return None
    try:
        document = json.loads(raw)
        return Trouble(
            store=str(document["store"]),
            reason=str(document["reason"]),
            detail=str(document["detail"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
