"""Log lines for people (text) or for machines (JSON), one format for every process.

A JSON line carries the time, level, logger and message, and the fields bound to the
current task with `bound(...)`: tenant, batch, region and the correlation id that follows
a batch from the gateway's request through the ImageBatch and the queue into the worker.
asyncio copies the bound fields into each task it starts, so one handler's fields never
reach another's lines.

    with logs.bound(tenant="acme", batch="nightly", correlation_id="req-7f3a"):
        logger.info("dispatched")   # {"msg": "dispatched", "tenant": "acme", ...}

Secrets never go in: nothing here reads keys or environment; callers bind names and ids.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
from collections.abc import Iterator
from typing import Literal

Format = Literal["text", "json"]
FORMATS: tuple[Format, ...] = ("text", "json")
FIELDS: tuple[str, ...] = ("tenant", "batch", "region", "correlation_id")
"""The fields a line may be bound to, in the order they are written."""

_bound: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("imagegen_log_fields")

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(bound_fields)s"


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Add fields (of FIELDS; None values are skipped) to every line logged in the block."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"log fields {sorted(unknown)}: must be among {', '.join(FIELDS)}")
    merged = {**_bound.get({}), **{k: v for k, v in fields.items() if v is not None}}
    token = _bound.set(merged)
    try:
        yield
    finally:
        _bound.reset(token)


def bind_rest_of_task(**fields: str | None) -> None:
    """Add fields to the lines of the rest of the current task, where no `with bound(...)`
    can enclose the work: a FastAPI dependency that learns a request's tenant, in the task
    that serves that one request. An enclosing `bound` block still restores its own
    fields when it ends."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"log fields {sorted(unknown)}: must be among {', '.join(FIELDS)}")
    _bound.set({**_bound.get({}), **{k: v for k, v in fields.items() if v is not None}})


def current() -> dict[str, str]:
    """The fields bound here, for a line or a payload."""
    return dict(_bound.get({}))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, msg, bound fields,
    and the traceback as `exc` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = _bound.get({})
        line.update({name: fields[name] for name in FIELDS if name in fields})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _bound.get({})
        record.bound_fields = "".join(
            f" {name}={fields[name]}" for name in FIELDS if name in fields
        )
        return super().format(record)


_QUIET = ("botocore", "aiobotocore", "s3transfer")
"""Libraries whose debug lines carry request signatures and access key ids: never more than
warnings from them, whatever the verbosity."""


def configure(*, format: Format, verbose: bool) -> None:
    """Set up the root logger of a process in the given format."""
    if format not in FORMATS:
        raise ValueError(f"--log-format {format!r}: must be one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if format == "json" else _TextFormatter(_TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty in _QUIET:
        logging.getLogger(chatty).setLevel(logging.WARNING)
