"""Retry-After, as every client of ours that honours it reads it."""

from __future__ import annotations

import datetime

import pytest

from imagegen import retryafter

NOW = datetime.datetime(2026, 11, 26, 6, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Thu, 26 Nov 2026 06:01:30 GMT", 90.0),
        ("Thu, 26 Nov 2026 05:00:00 GMT", 0.0),
        ("soon", None),
        ("inf", None),
        ("2.5", 2.5),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert retryafter.seconds(header, now=NOW) == seconds
