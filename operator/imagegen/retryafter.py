"""The HTTP Retry-After header, read one way by every client of ours that honours it
(the OpenAI provider, the webhook dispatcher)."""

from __future__ import annotations

import datetime
import email.utils
import math


def seconds(value: str | None, *, now: datetime.datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for, delay-seconds or an HTTP date (0 when the
    date has passed); None when absent or unreadable, so the caller's backoff decides."""
    if not value:
        return None
    try:
        wait = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        wait = (when - (now or datetime.datetime.now(datetime.UTC))).total_seconds()
    return max(0.0, wait) if math.isfinite(wait) else None
