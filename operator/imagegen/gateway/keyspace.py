"""Every key the gateway writes in the management Redis, named in one place.

Each key carries its tenant as the hash tag `{tenant}`: in Redis Cluster all of a tenant's
keys live in one slot, so one Lua call may touch several of them (requests and images).
"""

from __future__ import annotations

import hashlib

_PREFIX = "imagegen:gateway"


def requests_limit(tenant: str) -> str:
    """GCRA state of the tenant's requests per minute."""
    return f"{_PREFIX}:{{{tenant}}}:ratelimit:requests"


def images_limit(tenant: str) -> str:
    """GCRA state of the tenant's images per minute."""
    return f"{_PREFIX}:{{{tenant}}}:ratelimit:images"


def idempotency(tenant: str, key: str) -> str:
    """The record of one Idempotency-Key; hashed, so a client's key never needs escaping."""
    hashed = hashlib.sha256(key.encode()).hexdigest()
    return f"{_PREFIX}:{{{tenant}}}:idempotency:{hashed}"


def stream_ticket(ticket: str) -> str:
    """A single-use stream ticket, by its digest: Redis never holds a usable ticket. One
    key per command, so any slot does; the ticket names its tenant inside."""
    hashed = hashlib.sha256(ticket.encode()).hexdigest()
    return f"{_PREFIX}:ticket:{hashed}"
