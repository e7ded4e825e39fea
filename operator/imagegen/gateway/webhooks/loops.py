"""What the webhook service's long-running loops share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from imagegen import supervision


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
        supervision.stop_if_cancelled()
        try:
            await step()
        except retry_on as error:
            supervision.stop_if_cancelled()
            on_error(error)
            await asyncio.sleep(pause_seconds)
