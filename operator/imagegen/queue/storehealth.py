"""Object-store trouble, as a pool's workers see it, shared with the operator through the
region's Redis: one expiring key per pool (`keys.Keyspace.store_trouble`).

Workers set it on every failed try (at most once per REPORT_SECONDS each) and delete it on
their next success; a key no worker refreshes lapses after TROUBLE_TTL_SECONDS, so a
pool whose workers all died does not show a stale outage forever.
"""

from __future__ import annotations

import dataclasses
import json

from imagegen import redisconn
from imagegen.queue import keys

TROUBLE_TTL_SECONDS = 60
"""A report not refreshed for this long is gone."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Trouble:
    """The latest failure: which store (URL and endpoint, never credentials) and why."""

    store: str
    reason: str
    """`base.Reason`: Unreachable, AccessDenied, NotFound or Refused."""
    detail: str


async def report(*, redis: redisconn.Client, pool: str, trouble: Trouble) -> None:
    """Record `trouble` for the pool, expiring after TROUBLE_TTL_SECONDS."""
    document = json.dumps(dataclasses.asdict(trouble))
    await redis.set(keys.Keyspace(pool=pool).store_trouble, document, ex=TROUBLE_TTL_SECONDS)


async def clear(*, redis: redisconn.Client, pool: str) -> None:
    """The store answers again."""
    await redis.delete(keys.Keyspace(pool=pool).store_trouble)


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
