"""What the webhook service's long-running loops share."""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """Re-raise a cancellation that a client turned into an error of its own.

    redis-py and httpx can surface a task's cancellation, arriving mid-read, as a
    connection error or a timeout; a loop that catches those to retry must still end
    when its task was cancelled, or stop() would wait for it forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
