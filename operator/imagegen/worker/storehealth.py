"""The worker's side of `queue.storehealth`: report store failures, clear them on success.

Reporting never stands in the way of an item: a Redis error here is logged and dropped
(the item's own Redis calls will meet it soon enough).
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from imagegen import redisconn
from imagegen.queue import storehealth
from imagegen.storage import base

logger = logging.getLogger(__name__)

REPORT_SECONDS = 2.0
"""At most one report per this long from one worker: its slots fail together."""


class Reporter:
    """Reports one pool's store trouble from one worker."""

    def __init__(self, *, redis: redisconn.Client, pool: str) -> None:
        self._redis = redis
        self._pool = pool
        self._reported_at: float | None = None

    async def failed(self, *, error: base.StoreError) -> None:
        """Report the failure, unless this worker did so a moment ago."""
        now = time.monotonic()
        if self._reported_at is not None and now - self._reported_at < REPORT_SECONDS:
            return
        self._reported_at = now
        trouble = storehealth.Trouble(store=error.store, reason=error.reason, detail=error.detail)
        try:
            await storehealth.report(redis=self._redis, pool=self._pool, trouble=trouble)
        except RedisError as redis_error:
            logger.warning("could not report object-store trouble: %s", redis_error)

    async def recovered(self) -> None:
        """Clear the report this worker made, once the store answers again."""
        if self._reported_at is None:
            return
        self._reported_at = None
        try:
            await storehealth.clear(redis=self._redis, pool=self._pool)
        except RedisError as redis_error:
            logger.warning("could not clear object-store trouble: %s", redis_error)
