"""Idempotency-Key: one submission per (tenant, key), its response kept for 24 hours.

The first request claims the key with SET NX and a short lease; concurrent duplicates see
the claim and get 409, so exactly one batch is created. When the first answers, its status,
headers and body replace the claim for 24 hours and later duplicates get them back
verbatim. A different body under the same key is refused (422): that is a client bug, not
a retry. A gateway that dies mid-request leaves only the short claim, which expires.

Redis alone cannot make this exact: the apiserver may time out after creating the CR, or
Redis may fail while the answer is kept, and the retry then finds no record. So the
batch's name is derived from (tenant, key): the apiserver itself refuses a second batch
under the same key, and the gateway replays the one that exists (its body's fingerprint
is kept on it, so a different body under the key is still refused).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
from typing import Any

from imagegen import redisconn
from imagegen.gateway import keyspace

KEEP_SECONDS = 24 * 3600
CLAIM_SECONDS = 120
"""How long an unfinished claim blocks duplicates: well above one submission's worst case
(apiserver timeout plus webhook check), well below a client's patience."""
MAX_KEY_LENGTH = 255


class State(enum.Enum):
    """What a request with a key should do."""

    NEW = "new"
    """Claimed: go ahead, then finish() or abandon()."""
    IN_FLIGHT = "in-flight"
    MISMATCH = "mismatch"
    REPLAY = "replay"


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredResponse:
    """A response to give back unchanged."""

    status: int
    headers: dict[str, str]
    body: bytes


def fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 of the request: the same JSON in another key order or spacing is the same."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def batch_name(*, tenant: str, key: str) -> str:
    """The name of the batch created under an Idempotency-Key: the same for a retry."""
    digest = hashlib.sha256(f"{tenant}\n{key}".encode()).hexdigest()
    return f"batch-{digest[:24]}"


class IdempotencyStore:
    """Claims and stored responses in Redis."""

    def __init__(self, *, redis: redisconn.Client) -> None:
        self._redis = redis

    async def claim(
        self, *, tenant: str, key: str, fingerprint: str
    ) -> tuple[State, StoredResponse | None]:
        """Claim the key, or say why not (and what to answer when it is a replay)."""
        name = keyspace.idempotency(tenant, key)
        claim = json.dumps({"fingerprint": fingerprint, "state": "claimed"})
        if await self._redis.set(name, claim, nx=True, ex=CLAIM_SECONDS):
            return State.NEW, None
        raw = await self._redis.get(name)
        if raw is None:
            # The other request abandoned or its claim expired between our two calls.
            return State.IN_FLIGHT, None
        record = json.loads(raw)
        if record["fingerprint"] != fingerprint:
            return State.MISMATCH, None
        if record["state"] == "claimed":
            return State.IN_FLIGHT, None
        return State.REPLAY, StoredResponse(
            status=int(record["status"]),
            headers=dict(record["headers"]),
            body=base64.b64decode(record["body"]),
        )

    async def finish(
        self, *, tenant: str, key: str, fingerprint: str, response: StoredResponse
    ) -> None:
        """Keep the response for 24 hours in place of the claim."""
        record = {
            "fingerprint": fingerprint,
            "state": "done",
            "status": response.status,
            "headers": response.headers,
            "body": base64.b64encode(response.body).decode(),
        }
        await self._redis.set(
            keyspace.idempotency(tenant, key), json.dumps(record), ex=KEEP_SECONDS
        )

    async def abandon(self, *, tenant: str, key: str) -> None:
        """Drop the claim: the request failed before doing anything, a retry may go ahead."""
        await self._redis.delete(keyspace.idempotency(tenant, key))
