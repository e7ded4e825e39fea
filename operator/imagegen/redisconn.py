"""The one place a Redis client is built: a single node or a Redis Cluster, from a
`redisconfig.RedisConnection`, with TLS, timeouts and retries with backoff.

Every process (operator, gateway, worker, sim) connects through `connect`, so they agree
on what a URL means. Code that uses a client takes `Client` (either kind): the commands we
use behave the same on both, as long as every multi-key call stays in one hash slot, which
the keyspaces guarantee with hash tags. Sharded pub/sub (SPUBLISH/SSUBSCRIBE) works on
both: a single node serves every shard channel itself.
"""

from __future__ import annotations

import asyncio
import collections
import urllib.parse
from typing import Any

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
from redis import backoff
from redis import exceptions as redis_errors

from imagegen.api import redisconfig

Client = redis.asyncio.Redis | redis.asyncio.RedisCluster
"""A client of one node or of a cluster."""

RETRIED_ERRORS: tuple[type[redis_errors.RedisError], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
)
"""Errors after which a command is tried again: the command may not have run. Our writes
are Lua scripts or idempotent commands, so running one twice changes nothing."""


def connect(
    settings: redisconfig.RedisConnection,
    *,
    password: str | None = None,
    decode_responses: bool = False,
) -> Client:
    """A client of the Redis `settings` names; it connects on first use, not here."""
    address = settings.address
    retry = redis.asyncio.retry.Retry(
        backoff.ExponentialWithJitterBackoff(
            base=settings.retry.backoff_base_seconds, cap=settings.retry.backoff_cap_seconds
        ),
        settings.retry.attempts,
        supported_errors=RETRIED_ERRORS,
    )
    # What both kinds of client take alike; a cluster client passes it to each node's pool.
    common: dict[str, Any] = {
        "password": password,
        "ssl": address.tls,
        "ssl_ca_certs": None if settings.ca_file is None else str(settings.ca_file),
        "socket_timeout": settings.command_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "retry": retry,
        "decode_responses": decode_responses,
    }
    if address.cluster:
        return redis.asyncio.RedisCluster(
            startup_nodes=[
                redis.asyncio.cluster.ClusterNode(node.host, node.port) for node in address.nodes
            ],
            **common,
        )
    node = address.nodes[0]
    return redis.asyncio.Redis(host=node.host, port=node.port, db=address.db, **common)


def connect_url(
    url: str,
    *,
    password: str | None = None,
    timeout_seconds: float | None = None,
    decode_responses: bool = False,
) -> Client:
    """`connect` for a process given only a URL (a flag, or a whole URL kept in a Secret),
    with the default retries; `timeout_seconds` bounds both connecting and each command.

    A password inside the URL (`redis://:PASSWORD@host`) is taken out and used, for a URL
    that comes from a Secret; `password` wins over it.
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at:
        url = scheme + sep + hosts
        password = password or urllib.parse.unquote(userinfo.partition(":")[2]) or None
    timeouts: dict[str, float] = {}
    if timeout_seconds is not None:
        timeouts = {
            "connect_timeout_seconds": timeout_seconds,
            "command_timeout_seconds": timeout_seconds,
        }
    return connect(
        redisconfig.RedisConnection(url=url, **timeouts),
        password=password,
        decode_responses=decode_responses,
    )


class ShardedSubscriber:
    """SSUBSCRIBE to sharded channels on either kind of client.

    On a cluster each channel is served by the node owning its slot, so the client keeps a
    connection per such node (redis-py's ClusterPubSub, which re-subscribes after a
    failover); a single node serves every channel on one connection. Messages are
    `{"channel", "data"}` dicts as redis-py gives them; subscription confirmations are
    consumed here. Pub/sub drops messages while nobody listens: they say when to look
    again, never what the state is.
    """

    def __init__(self, client: Client) -> None:
        self._pubsub = client.pubsub()
        self._early: collections.deque[dict[str, Any]] = collections.deque()

    async def subscribe(self, *channels: str, timeout_seconds: float = 5.0) -> None:
        """Subscribe and wait until the server has confirmed every channel, so that a
        message published after this returns reaches us."""
        await self._pubsub.ssubscribe(*channels)
        confirmed = 0
        async with asyncio.timeout(timeout_seconds):
            while confirmed < len(channels):
                message = await self._next(ignore_subscribe_messages=False, wait_seconds=0.1)
                if message is None:
                    continue
                if _text(message["type"]) == "ssubscribe":
                    confirmed += 1
                else:
                    self._early.append(message)

    async def get_message(self, *, wait_seconds: float) -> dict[str, Any] | None:
        """The next published message, or None when none came within `wait_seconds`
        (or only a subscription notice did)."""
        if self._early:
            return self._early.popleft()
        message: dict[str, Any] | None = await self._next(
            ignore_subscribe_messages=True, wait_seconds=wait_seconds
        )
        return message

    async def aclose(self) -> None:
        """Drop the subscriptions and their connections."""
        await self._pubsub.aclose()

    async def _next(self, *, ignore_subscribe_messages: bool, wait_seconds: float) -> Any:
        if isinstance(self._pubsub, redis.asyncio.cluster.ClusterPubSub):
            return await self._pubsub.get_sharded_message(
                ignore_subscribe_messages=ignore_subscribe_messages, timeout=wait_seconds
            )
        return await self._pubsub.get_message(
            ignore_subscribe_messages=ignore_subscribe_messages, timeout=wait_seconds
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
