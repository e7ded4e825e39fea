"""Caps on open streams (SSE and WebSocket), per tenant and per process.

A stream is cheap once its watch is shared (streamhub), but each still holds a socket, a
task and a little memory for as long as the client stays: without a cap one tenant with a
large burst could hold the process's file descriptors and memory. Over a cap, the next
stream is refused with 429 and Retry-After; the streams already open carry on.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator

from imagegen.gateway import problems

RETRY_AFTER_SECONDS = 5
"""A stream ends when its batch does, so a slot frees up within seconds to minutes."""


class Slot:
    """One stream's place under the caps; release() is safe to call more than once."""

    def __init__(self, caps: StreamCaps, tenant: str) -> None:
        self._caps = caps
        self._tenant = tenant
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._caps._release(self._tenant)


class StreamCaps:
    """Counts the open streams; acquire() refuses one past either cap."""

    def __init__(self, *, per_tenant: int, per_process: int) -> None:
        self._per_tenant = per_tenant
        self._per_process = per_process
        self._open: collections.Counter[str] = collections.Counter()

    def total(self) -> int:
        """Streams open in this process."""
        return sum(self._open.values())

    def acquire(self, tenant: str) -> Slot:
        """A slot for a stream of the tenant; 429 with Retry-After when none is free."""
        if self._open[tenant] >= self._per_tenant:
            raise _refused(f"tenant {tenant} has {self._per_tenant} streams open, its most")
        if self.total() >= self._per_process:
            raise _refused("this gateway serves as many streams as it can")
        self._open[tenant] += 1
        return Slot(self, tenant)

    @contextlib.contextmanager
    def open(self, tenant: str) -> Iterator[None]:
        """Hold a slot while the context lasts."""
        slot = self.acquire(tenant)
        try:
            yield
        finally:
            slot.release()

    def _release(self, tenant: str) -> None:
        self._open[tenant] -= 1
        if not self._open[tenant]:
            del self._open[tenant]


def _refused(why: str) -> problems.Problem:
    return problems.Problem(
        status=429,
        slug="too-many-streams",
        detail=f"{why}; close one or retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
