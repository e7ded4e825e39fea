"""The one place a Redis client is built: a single node or a Redis Cluster, from a
`redisconfig.RedisSettings` and its `Credentials`, with TLS, timeouts and retries with
backoff.

Every process (operator, gateway, worker, sim) connects through `connect`, so they agree
on what a URL means; the operator reads a region's password and CA through the apiserver,
the others read theirs with `local_credentials`. Code that uses a client takes `Client`
(either kind): the commands we use behave the same on both, as long as every multi-key
call stays in one hash slot, which the keyspaces guarantee with hash tags. Sharded pub/sub
(SPUBLISH/SSUBSCRIBE) works on both: a single node serves every shard channel itself.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import pathlib
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Credentials:
    """What a connection proves and checks beyond the settings: the password, and the CA
    bundle that verifies the server's certificate."""

    password: str | None = dataclasses.field(default=None, repr=False)
    """Kept out of repr so that it never reaches a log."""
    ca_pem: str | None = None
    """PEM text of the CA bundle; None: the system's trust store."""


def connect(
    settings: redisconfig.RedisSettings,
    *,
    credentials: Credentials | None = None,
    decode_responses: bool = False,
) -> Client:
    """A client of the Redis `settings` names; it connects on first use, not here."""
    credentials = credentials or Credentials()
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
        "password": credentials.password,
        "socket_timeout": settings.command_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "retry": retry,
        "decode_responses": decode_responses,
    }
    if address.tls:
        common |= {"ssl": True, "ssl_ca_data": credentials.ca_pem}
    if address.cluster:
        return redis.asyncio.RedisCluster(
            startup_nodes=[
                redis.asyncio.cluster.ClusterNode(node.host, node.port) for node in address.nodes
            ],
            **common,
        )
    node = address.nodes[0]
    return redis.asyncio.Redis(host=node.host, port=node.port, db=address.db, **common)


def local_credentials(
    connection: redisconfig.RedisConnection, *, password: str | None = None
) -> Credentials:
    """The credentials of a process whose CA bundle and password are files of its own
    (`caFile`, `passwordFile`), or whose password came from its environment (`password`).

    Read once, at start: a missing file is a ValueError naming the field, not a connection
    error repeated by every retry.
    """
    if password is not None and connection.password_file is not None:
        raise ValueError("passwordFile: set, and a password came from the environment too")
    if connection.password_file is not None:
        text = _read(connection.password_file, field="passwordFile")
        password = text.removesuffix("\n").removesuffix("\r")
    ca_pem = None if connection.ca_file is None else _read(connection.ca_file, field="caFile")
    return Credentials(password=password or None, ca_pem=ca_pem)


def _read(path: pathlib.Path, *, field: str) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise ValueError(f"{field}: cannot read {path}: {error.strerror}") from None


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
                kind = _text(message["type"])
                if kind == "ssubscribe":
                    confirmed += 1
                elif kind == "smessage":
                    self._early.append(message)

    async def unsubscribe(self, *channels: str) -> None:
        """Drop the channels; their confirmations are consumed by `get_message`."""
        await self._pubsub.sunsubscribe(*channels)

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
