"""Polling with a deadline: integration tests wait for controllers, never sleep blindly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    what: str = "condition",
    explain: Callable[[], str] | None = None,
) -> T:
    """Call probe until it returns something truthy; return it, or fail after timeout
    with what `explain` then says of the world (a controller's view and log, say)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    detail = f"; {explain()}" if explain else ""
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r}){detail}")


async def until_async(
    probe: Callable[[], Awaitable[T | None]],
    *,
    seconds: float = 60.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """`until` for async probes, so the event loop keeps running the code under test."""
    deadline = time.monotonic() + seconds
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {seconds}s (last: {last!r})")
