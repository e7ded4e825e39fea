"""The Redis keyspace of the webhook outbox: the only place its key names are built.

Every key carries the hash tag `{webhooks}`, so each Lua script touches one Redis Cluster
slot. The outbox is one stream; its volume (a handful of events per batch) fits a slot.

- `stream` STREAM: one entry per event to deliver (msg_id, type, tenant, url, body).
- consumer group `dispatchers` on it: entries read but not settled are pending, and a
  dispatcher claims those of a dead one (XAUTOCLAIM).
- `emitted:<batch uid>:<event type>:<step>` STRING: set once when the event is appended,
  so a producer that re-reads every batch after a restart appends nothing twice.
- `retries` ZSET: stream entry id scored by when its next attempt is due (Unix s); while
  an attempt runs its score is pushed to the end of a lease, so a dead dispatcher's
  retry comes due again.
- `attempts` HASH: stream entry id -> attempts made so far.
- `delivery:<msg_id>` HASH: the latest outcome of a message (state, attempts, status,
  error, updated), kept for a week for support and tests.
- `disabled:<tenant>:<sha256 of url>` STRING: the endpoint answered 410 Gone; nothing
  more is sent to it for that tenant.
"""

from __future__ import annotations

import hashlib

_PREFIX = "ig:wh:{webhooks}"
GROUP = "dispatchers"


def stream() -> str:
    """The outbox stream."""
    return f"{_PREFIX}:stream"


def emitted(*, batch_uid: str, event_type: str, step: int) -> str:
    """The marker that an event of a batch was appended."""
    return f"{_PREFIX}:emitted:{batch_uid}:{event_type}:{step}"


def retries() -> str:
    """Entries waiting for another attempt, by due time."""
    return f"{_PREFIX}:retries"


def attempts() -> str:
    """Attempts made per stream entry."""
    return f"{_PREFIX}:attempts"


def delivery(msg_id: str) -> str:
    """The outcome record of one message."""
    return f"{_PREFIX}:delivery:{msg_id}"


def disabled(*, tenant: str, url: str) -> str:
    """The marker of an endpoint that answered 410 Gone (a digest: URLs are long and may
    carry tokens that have no business in a key name)."""
    return f"{_PREFIX}:disabled:{tenant}:{hashlib.sha256(url.encode()).hexdigest()}"
