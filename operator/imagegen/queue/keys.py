"""The Redis keyspace of the queue: the only place a key or channel name is built.

One Redis holds the queues of one region. Its unit is a *pool*: `shared` or
`dedicated-<tenant>`, as the workers of that pool consume it. Every key and channel of a
pool carries the hash tag `{<pool>}`, so each Lua script touches a single Redis Cluster
slot and the pool's events go to that slot's shard (SPUBLISH).

Keys of pool P (`ig:q:{P}:` prefix):

- `ring:<tier>` LIST: lane keys of the tier that have (or recently had) queued items, in
  deficit-round-robin order; the head is the lane being served.
- `deficit` HASH: lane key -> deficit (items it may still take this turn). A lane is in
  its ring exactly when it has a field here.
- `weight` HASH: lane key -> the tenant's weight, from its latest enqueued batch.
- `leases` ZSET: item key scored by lease expiry (Unix ms).
- `seq` STRING: enqueue counter; orders items within a lane.
- `lane:<tier>:<tenant>` ZSET: the tenant's queued item keys, scored so that high comes
  before normal before low, then first in first out (see `core`).
- `batch:<uid>` HASH: uid, tenant, tier, priority, channel, `cancelled`, `total` and one
  counter per item state (`Queued`, `Running`, `Succeeded`, `Failed`, `Cancelled`).
- `batch:<uid>:items` LIST: the batch's item keys in enqueue order.
- `item:<uid>:<id>` HASH: uid, id, tenant, tier, priority, its lane and batch keys, score,
  payload (JSON), state, attempts, enqueued (ms), token, worker, expires (ms), result
  (JSON), error.

- `store-trouble` STRING (JSON, expiring): the pool's workers' latest failure to reach the
  region's object store, cleared by their next success (see `storehealth`).

Channel `ig:q:{P}:events` (sharded pub/sub) carries one JSON message per state change of
the pool's items, naming the batch: one channel per pool, so a region's reporter listens to
a handful of channels whatever the number of batches.

Lua scripts never assemble a key: they get the keys above as KEYS, or read a key that was
written from KEYS (an item's lane and batch, a lane key held in a ring).
"""

from __future__ import annotations

import dataclasses
import re

from imagegen.api import tenant as tenant_api

SHARED = "shared"
"""The pool of a region shared by every tenant whose `spec.workers.pool` is shared."""
DEDICATED_PREFIX = "dedicated-"
"""A tenant's own pool is this prefix and the tenant's name."""

_PREFIX = "ig:q"
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_POOL = re.compile(r"^(shared|dedicated-[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$")


def dedicated(*, tenant: str) -> str:
    """The pool name of a tenant's dedicated workers."""
    return pool_name(f"{DEDICATED_PREFIX}{_segment(tenant)}")


def pool_name(name: str) -> str:
    """`name` if it is a valid pool name (`shared` or `dedicated-<tenant>`)."""
    if not _POOL.match(name):
        raise ValueError(f"pool {name!r}: must be 'shared' or 'dedicated-<tenant>'")
    return name


def _segment(value: str) -> str:
    # Braces would move the hash tag and colons would make two keys collide.
    if not _SEGMENT.match(value):
        raise ValueError(f"{value!r}: must match {_SEGMENT.pattern}")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class Keyspace:
    """Every key and channel of one pool."""

    pool: str

    def __post_init__(self) -> None:
        pool_name(self.pool)

    @property
    def tag(self) -> str:
        """The hash tag shared by every key of the pool."""
        return "{" + self.pool + "}"

    def _key(self, *parts: str) -> str:
        return ":".join((_PREFIX, self.tag, *parts))

    def ring(self, *, tier: tenant_api.Tier) -> str:
        """LIST of the tier's active lanes in round-robin order."""
        return self._key("ring", tier)

    @property
    def deficit(self) -> str:
        """HASH lane key -> deficit."""
        return self._key("deficit")

    @property
    def weight(self) -> str:
        """HASH lane key -> tenant weight."""
        return self._key("weight")

    @property
    def leases(self) -> str:
        """ZSET item key -> lease expiry in Unix ms."""
        return self._key("leases")

    @property
    def seq(self) -> str:
        """STRING counter that orders items within a lane."""
        return self._key("seq")

    @property
    def store_trouble(self) -> str:
        """STRING (JSON) the pool's latest object-store failure, expiring."""
        return self._key("store-trouble")

    def pool_keys(self) -> list[str]:
        """The keys every script gets first, in the order `common.lua` reads them."""
        return [
            self.ring(tier="priority"),
            self.ring(tier="standard"),
            self.deficit,
            self.weight,
            self.leases,
            self.seq,
        ]

    def lane(self, *, tier: tenant_api.Tier, tenant: str) -> str:
        """ZSET of one tenant's queued items in one tier."""
        return self._key("lane", tier, _segment(tenant))

    def batch(self, *, uid: str) -> str:
        """HASH of a batch's attributes and per-state counters."""
        return self._key("batch", _segment(uid))

    def batch_items(self, *, uid: str) -> str:
        """LIST of a batch's item keys."""
        return self._key("batch", _segment(uid), "items")

    def item(self, *, uid: str, item_id: str) -> str:
        """HASH of one item."""
        return self._key("item", _segment(uid), _segment(item_id))

    @property
    def events(self) -> str:
        """Sharded pub/sub channel of the pool's item state changes."""
        return self._key("events")
