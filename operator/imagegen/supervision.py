"""Long-running loops of a process, watched.

Each loop serves a part of the process (the gateway's key index, Tenants and webhooks;
the operator's drift sweep and queue sampling) and is meant to run until the process
stops; one that ends early, by a bug or an error it does not retry, leaves that part
silently stale. The supervisor notices and tells: the gateway's /readyz and /healthz name
the dead loop, so the kubelet restarts the pod; the operator stops with an error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class Supervisor:
    """Loops by name; dead() names those that ended while they should be running."""

    def __init__(self) -> None:
        self._owned: list[asyncio.Task[None]] = []
        self._died: list[str] = []
        self._stopping = False
        self.died = asyncio.Event()
        """Set when a loop has ended while it should be running."""

    def start(self, name: str, loop: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `loop` as a task and watch it."""
        task = asyncio.create_task(loop, name=name)
        self._owned.append(task)
        self.watch(name, task)
        return task

    def watch(self, name: str, task: asyncio.Task[None]) -> None:
        """Watch a task someone else started (and will stop)."""
        task.add_done_callback(functools.partial(self._ended, name))

    def dead(self) -> list[str]:
        """Names of the loops that ended while they should have been running (those that
        end once the app is stopping are not dead)."""
        return sorted(self._died)

    def stopping(self) -> None:
        """The app is stopping: loops that end from now on are not dead."""
        self._stopping = True

    async def stop(self) -> None:
        """Cancel the loops started here and wait for each to end; the loops only watched
        are stopped by whoever started them."""
        self.stopping()
        for task in self._owned:
            task.cancel()
        await asyncio.gather(*self._owned, return_exceptions=True)

    def _ended(self, name: str, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        self._died.append(name)
        self.died.set()
        error = None if task.cancelled() else task.exception()
        logger.error("loop %s ended while it should run", name, exc_info=error)


def stop_if_cancelled() -> None:
    """Re-raise a cancellation that a client turned into an error of its own, or hid.

    redis-py and httpx can surface a task's cancellation, arriving mid-read, as a
    connection error or a timeout (on Python 3.11 a cancel racing a timeout becomes a
    TimeoutError); code that catches those to retry or to report must still end when its
    task was cancelled. A client can also swallow it whole and return as if nothing
    happened: under load a webhook dispatcher was seen to outlive its cancellation.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
