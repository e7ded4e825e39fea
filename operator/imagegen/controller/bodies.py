"""Small helpers every handler module needs: plain bodies and Kubernetes time."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Kopf body as plain dicts and lists, as pydantic wants them."""
    return {
        key: (plain(value) if isinstance(value, Mapping) else value) for key, value in body.items()
    }


def utc_now() -> datetime.datetime:
    """The current time in UTC, whole seconds (as Kubernetes stores times)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)
