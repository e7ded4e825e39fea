"""The producer: watches every ImageBatch and appends the webhook events its status
stands for to the outbox.

The watch itself (resume, relist, backoff) is the watch helper's. A Redis that fails
restarts it from a fresh list after a pause: the events of every batch are then derived
again, and the outbox's once-only markers drop those already appended, so nothing is lost
and nothing is sent twice.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import lightkube
import pydantic
from redis import exceptions as redis_errors

from imagegen import redisconn, resources
from imagegen.gateway.webhooks import events, loops, outbox
from imagegen.kube import watching

logger = logging.getLogger(__name__)

MAX_BATCH_AGE = datetime.timedelta(days=7)
"""A batch that finished longer ago produces no events: its once-only markers may be gone
(they live outbox.EMITTED_TTL_SECONDS), and nobody wants week-old news twice."""
WATCH = watching.Options(server_timeout_seconds=300)
"""The watch of every ImageBatch, when the gateway's settings say nothing else."""
RESTART_PAUSE_SECONDS = 2.0

_RESTARTED_BY: tuple[type[Exception], ...] = (redis_errors.RedisError, OSError)


async def run(
    *,
    kube: lightkube.AsyncClient,
    redis: redisconn.Client,
    options: watching.Options = WATCH,
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    pause_seconds: float = RESTART_PAUSE_SECONDS,
) -> None:
    """Watch and append until cancelled."""

    async def watch_and_append() -> None:
        async for event in watching.watch(
            kube,
            resources.ImageBatch,
            what="ImageBatches for webhooks",
            options=options,
            namespace=lightkube.ALL_NS,
        ):
            if isinstance(event, watching.Listed):
                for obj in event.objects:
                    await append_events(redis=redis, body=resources.as_dict(obj), now=clock())
            elif event.type != "DELETED":
                await append_events(redis=redis, body=resources.as_dict(event.object), now=clock())

    def restarting(error: Exception) -> None:
        logger.warning("webhook producer: restarts in %ss: %s", pause_seconds, error)

    await loops.repeat(
        watch_and_append,
        retry_on=_RESTARTED_BY,
        on_error=restarting,
        pause_seconds=pause_seconds,
    )


async def append_events(
    *, redis: redisconn.Client, body: dict[str, Any], now: datetime.datetime
) -> list[events.Event]:
    """Append the events one version of a batch stands for; return those new to the outbox."""
    try:
        found = events.for_batch(body, now=now)
    except pydantic.ValidationError as error:
        name = (body.get("metadata") or {}).get("name")
        logger.warning("webhook producer: ImageBatch %s unreadable, skipped: %s", name, error)
        return []
    completed = (body.get("status") or {}).get("completedAt")
    if completed and _parse(completed) < now - MAX_BATCH_AGE:
        return []
    return [event for event in found if await outbox.append(redis, event)]


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
