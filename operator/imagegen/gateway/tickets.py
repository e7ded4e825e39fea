"""Short-lived, single-use tickets that open one batch's event stream.

A browser cannot set `Authorization` on a WebSocket or an EventSource, and an API key in a
URL ends up in proxy logs and browser history. So the page asks for a ticket with its key
(an ordinary authenticated POST), then opens the stream with `?ticket=`. A ticket opens
one stream of one batch of one tenant, once, within `ticket_seconds`; Redis keeps only its
digest, and GETDEL redeems it atomically, so two connections can never share one.
"""

from __future__ import annotations

import dataclasses
import json
import secrets

from imagegen import redisconn
from imagegen.gateway import keyspace

PREFIX = "igt_"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Grant:
    """What a redeemed ticket allows."""

    tenant: str
    batch: str


@dataclasses.dataclass(kw_only=True)
class TicketStore:
    """Issue and redeem tickets in the management Redis."""

    redis: redisconn.Client
    ttl_seconds: int

    async def issue(self, *, tenant: str, batch: str) -> str:
        """A new ticket for the tenant's batch, valid for ttl_seconds."""
        ticket = PREFIX + secrets.token_urlsafe(24)
        grant = json.dumps({"tenant": tenant, "batch": batch})
        await self.redis.set(keyspace.stream_ticket(ticket), grant, ex=self.ttl_seconds)
        return ticket

    async def redeem(self, ticket: str) -> Grant | None:
        """The ticket's grant, consumed; None when unknown, used or expired."""
        raw = await self.redis.getdel(keyspace.stream_ticket(ticket))
        if raw is None:
            return None
        loaded = json.loads(raw)
        return Grant(tenant=str(loaded["tenant"]), batch=str(loaded["batch"]))
