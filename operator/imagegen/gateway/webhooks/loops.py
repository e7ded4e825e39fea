"""What the webhook service's long-running loops share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


def stop_if_cancelled() -> None:
    """Re-raise a cancellation that a client turned into an error of its own, or hid.

    redis-py and httpx can surface a task's cancellation, arriving mid-read, as a
    connection error or a timeout; a loop that catches those to retry must still end
    when its task was cancelled, or stop() would wait for it forever. A client can also
    swallow it whole and return as if nothing happened: under load a dispatcher was seen
    to outlive its cancellation, turning on its retry poll, with nothing raised.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def repeat(
    step: Callable[[], Awaitable[None]],
    *,
    retry_on: tuple[type[Exception], ...],
    on_error: Callable[[Exception], None],
    pause_seconds: float,
) -> None:
    """Run `step` over and over until the task is cancelled. An error in `retry_on` goes
    to `on_error` and is followed by a pause; anything else ends the loop."""
    while True:
        # Every turn, not only after an error: a swallowed cancellation raises nothing.
        stop_if_cancelled()
        try:
            await step()
        except retry_on as error:
            stop_if_cancelled()
            on_error(error)
            await asyncio.sleep(pause_seconds)
