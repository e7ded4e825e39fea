"""The producer: watches every ImageBatch and appends the webhook events its status
stands for to the outbox.

A watch that breaks, or a Redis that fails, restarts the watch from a fresh list after a
pause; the events of every batch are then derived again and the outbox's once-only
markers drop those already appended, so nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import lightkube
import pydantic
from redis import exceptions as redis_errors

from imagegen import redisconn, resources
from imagegen.gateway.webhooks import events, loops, outbox

logger = logging.getLogger(__name__)

MAX_BATCH_AGE = datetime.timedelta(days=7)
"""A batch that finished longer ago produces no events: its once-only markers may be gone
(they live outbox.EMITTED_TTL_SECONDS), and nobody wants week-old news twice."""
WATCH_SERVER_TIMEOUT_SECONDS = 300
"""The apiserver ends each watch request after this; lightkube starts the next one."""
RESTART_PAUSE_SECONDS = 2.0

_RESTARTED_BY: tuple[type[Exception], ...] = (
    lightkube.ApiError,
    httpx2.HTTPError,
    redis_errors.RedisError,
    OSError,
    # A watch stream cut mid-event ends in a line lightkube cannot decode (msgspec's
    # DecodeError, a ValueError): the next watch starts afresh.
    ValueError,
)


async def run(
    *,
    kube: lightkube.AsyncClient,
    redis: redisconn.Client,
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    pause_seconds: float = RESTART_PAUSE_SECONDS,
) -> None:
    """Watch and append until cancelled."""

    async def watch_then_pause() -> None:
        await _watch_once(kube=kube, redis=redis, clock=clock)
        await asyncio.sleep(pause_seconds)

    def restarting(error: Exception) -> None:
        logger.warning("webhook producer: watch restarts in %ss: %s", pause_seconds, error)

    await loops.repeat(
        watch_then_pause,
        retry_on=_RESTARTED_BY,
        on_error=restarting,
        pause_seconds=pause_seconds,
    )


async def _watch_once(
    *,
    kube: lightkube.AsyncClient,
    redis: redisconn.Client,
    clock: Callable[[], datetime.datetime],
) -> None:
    async for kind, obj in kube.watch(
        resources.ImageBatch,
        namespace=lightkube.ALL_NS,
        server_timeout=WATCH_SERVER_TIMEOUT_SECONDS,
    ):
        if kind == "DELETED":
            continue
        plain: Any = obj
        await append_events(redis=redis, body=plain.to_dict(), now=clock())


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
