"""A region's pool channels, listened to on behalf of its reporter.

One sharded pub/sub channel per queue pool (`keys.Keyspace.events`) carries every item
change of the pool's batches, naming the batch. The listener keeps a subscription to the
channel of each pool that the region's followed batches use, and tells the reporter which
batch to read; a message naming no batch (object-store trouble) asks for every batch of
its pool. Pub/sub drops what is published while nobody listens, so each new subscription
(the first, and every one after a broken connection) asks for its pool's batches too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis import exceptions as redis_errors

from imagegen import redisconn, regions, supervision
from imagegen.controller import batchindex
from imagegen.queue import core, keys

logger = logging.getLogger(__name__)

CHANNEL_ERRORS: tuple[type[Exception], ...] = (
    *regions.UNREACHABLE_ERRORS,
    TimeoutError,
    redis_errors.RedisError,
    redis_errors.RedisClusterException,
)
"""What ends a subscription: it is made again after a pause."""


class Listener:
    """The pool channels of one region's followed batches."""

    def __init__(
        self,
        *,
        region: regions.RegionClient,
        index: batchindex.Index,
        poke: Callable[[str], None],
        wait_seconds: float,
        retry_seconds: float,
    ) -> None:
        self._region = region
        self._index = index
        self._poke = poke
        self._wait_seconds = wait_seconds
        """Longest wait for a message before the pools in use are looked at again."""
        self._retry_seconds = retry_seconds
        """Pause before subscribing again after the connection broke."""

    async def run(self) -> None:
        """Listen until cancelled, with a new connection after each broken one."""
        while True:
            subscriber = redisconn.ShardedSubscriber(self._region.redis)
            try:
                await self._listen(subscriber)
            except CHANNEL_ERRORS as error:
                supervision.stop_if_cancelled()  # a cancel a client turned into an error
                logger.debug("region %s: channel lost: %s", self._region.name, error or type(error))
            finally:
                with contextlib.suppress(*CHANNEL_ERRORS):
                    await subscriber.aclose()
            await asyncio.sleep(self._retry_seconds)

    async def _listen(self, subscriber: redisconn.ShardedSubscriber) -> None:
        listening: dict[str, str] = {}
        """Channel -> its pool."""
        while True:
            wanted = {
                keys.Keyspace(pool=pool).events: pool
                for pool in self._index.pools_in(self._region.name)
            }
            new = [channel for channel in wanted if channel not in listening]
            if new:
                await subscriber.subscribe(*new)
                for channel in new:
                    listening[channel] = wanted[channel]
                    # What was published before the subscription took is not coming.
                    self._poke_pool(wanted[channel])
            gone = [channel for channel in listening if channel not in wanted]
            if gone:
                await subscriber.unsubscribe(*gone)
                for channel in gone:
                    del listening[channel]
            if not listening:
                await asyncio.sleep(self._wait_seconds)
                continue
            message = await subscriber.get_message(wait_seconds=self._wait_seconds)
            # redis-py's retries can turn a cancel that arrived mid-read into a read that
            # timed out: without this, a stopping operator waited on this loop forever.
            supervision.stop_if_cancelled()
            if message is not None:
                self._heard(message, listening=listening)

    def _heard(self, message: dict[str, Any], *, listening: dict[str, str]) -> None:
        uid = core.batch_of_event(message["data"])
        if uid is not None:
            self._poke(uid)
            return
        pool = listening.get(_text(message["channel"]))
        if pool is not None:
            self._poke_pool(pool)

    def _poke_pool(self, pool: str) -> None:
        for entry in self._index.followed_in(self._region.name):
            if entry.status.pool == pool:
                self._poke(entry.uid)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
