"""When to try a failed delivery again: exponential backoff with full jitter, bounded.

Attempt n (n >= 2) waits a uniformly random time between 0 and
min(cap, base * 2^(n-2)) after attempt n-1 failed; a `Retry-After` the receiver sent
replaces that wait (up to the cap). With the defaults, ten attempts spread over at most
about two hours (15 s, 30 s, 1 min, 2 min, 4 min, 8 min, 16 min, 32 min, 1 h ceilings);
then the delivery is recorded as failed.
"""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """The bounded retry schedule of a webhook delivery."""

    max_attempts: int = 10
    """Attempts in all, the first included; then the delivery is recorded as failed."""
    base_seconds: float = 15.0
    """Ceiling of the first retry's wait; it doubles with each further retry."""
    cap_seconds: float = 3600.0
    """Longest wait between two attempts, Retry-After included, so a receiver cannot
    park a delivery for days."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1")
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("base_seconds: must be > 0 and <= cap_seconds")

    def delay(
        self, *, attempts_made: int, retry_after: float | None, rng: random.Random
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the schedule is spent."""
        if attempts_made >= self.max_attempts:
            return None
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap_seconds)
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempts_made - 1))
        return rng.uniform(0.0, ceiling)
