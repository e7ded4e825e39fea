"""Which webhook events an ImageBatch's status stands for. Pure: no I/O.

The producer calls `for_batch` on every version of a batch it sees. The answer depends on
the batch alone (level-triggered), so seeing a version twice, or every batch again after
a restart, gives the same events; the outbox appends each one only once.

| event           | when                                              | subscribed by (spec)  |
|-----------------|---------------------------------------------------|-----------------------|
| batch.queued    | admitted and dispatched to a region               | queued                |
| batch.started   | items have started (Running, or finished)         | running               |
| batch.progress  | Running and another tenth finished (10 %..90 %)   | progress              |
| batch.expired   | the SLA deadline passed unfinished (SLAMet=False) | expired               |
| batch.completed | Succeeded, or PartiallySucceeded                  | succeeded, partially- |
|                 |                                                   | Succeeded (each)      |
| batch.failed    | Failed, or Rejected at admission                  | failed, rejected      |
| batch.cancelled | Cancelled                                         | cancelled             |
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from imagegen.api import imagebatch

PROGRESS_STEPS = 10
"""batch.progress is sent at most once per tenth of the items."""

_STARTED_PHASES = frozenset({"Running", "Succeeded", "PartiallySucceeded", "Failed"})
_QUEUED_PHASES = _STARTED_PHASES | {"Queued"}
_TERMINAL: dict[str, tuple[str, imagebatch.WebhookEvent]] = {
    "Succeeded": ("batch.completed", "succeeded"),
    "PartiallySucceeded": ("batch.completed", "partiallySucceeded"),
    "Failed": ("batch.failed", "failed"),
    "Rejected": ("batch.failed", "rejected"),
    "Cancelled": ("batch.cancelled", "cancelled"),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """One webhook message to deliver."""

    type: str
    """batch.started, batch.progress, ..."""
    step: int
    """The tenth of progress for batch.progress, else 0: with type and batch uid, what
    makes the event unique."""
    batch_uid: str
    tenant: str
    url: str
    msg_id: str
    """The `webhook-id`: the same for every attempt, so receivers can drop duplicates."""
    body: bytes
    """The JSON payload: {type, timestamp, data}."""


def for_batch(body: Mapping[str, Any], *, now: datetime.datetime) -> list[Event]:
    """The events the batch's current status stands for that its webhook subscribed to,
    in the order they happened."""
    batch = imagebatch.ImageBatch.model_validate(body)
    webhook = batch.spec.webhook
    if webhook is None or batch.metadata.uid is None:
        return []
    status = batch.status or imagebatch.ImageBatchStatus()
    wanted = set(webhook.events)
    found: list[tuple[str, int]] = []
    phase = status.phase or "Pending"
    if "queued" in wanted and phase in _QUEUED_PHASES:
        found.append(("batch.queued", 0))
    if "running" in wanted and phase in _STARTED_PHASES:
        found.append(("batch.started", 0))
    step = _progress_step(status.progress)
    if "progress" in wanted and phase == "Running" and 0 < step < PROGRESS_STEPS:
        found.append(("batch.progress", step))
    if "expired" in wanted and _sla_exceeded(status):
        found.append(("batch.expired", 0))
    terminal = _TERMINAL.get(phase)
    if terminal is not None and terminal[1] in wanted:
        found.append((terminal[0], 0))
    return [
        _event(batch=batch, url=webhook.url, event_type=t, step=s, status=status, now=now)
        for t, s in found
    ]


def msg_id(*, batch_uid: str, event_type: str, step: int) -> str:
    """A webhook-id derived from what makes the event unique, so it is stable."""
    digest = hashlib.sha256(f"{batch_uid}:{event_type}:{step}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _event(
    *,
    batch: imagebatch.ImageBatch,
    url: str,
    event_type: str,
    step: int,
    status: imagebatch.ImageBatchStatus,
    now: datetime.datetime,
) -> Event:
    uid = str(batch.metadata.uid)
    counts = status.counts or imagebatch.Counts()
    data: dict[str, Any] = {
        "id": batch.metadata.name,
        "uid": uid,
        "namespace": batch.metadata.namespace,
        "tenant": batch.spec.tenant,
        "status": status.phase,
        "progress": status.progress,
        "request_counts": counts.model_dump(mode="json"),
        "region": status.region,
        "deadline": _iso(status.deadline),
        "completed_at": _iso(status.completed_at),
    }
    if event_type == "batch.progress":
        data["percent"] = step * (100 // PROGRESS_STEPS)
    if status.message and event_type in ("batch.failed", "batch.cancelled"):
        data["message"] = status.message
    payload = {"type": event_type, "timestamp": _iso(now), "data": data}
    return Event(
        type=event_type,
        step=step,
        batch_uid=uid,
        tenant=batch.spec.tenant,
        url=url,
        msg_id=msg_id(batch_uid=uid, event_type=event_type, step=step),
        body=json.dumps(payload, separators=(",", ":"), sort_keys=True).encode(),
    )


def _progress_step(progress: str | None) -> int:
    """Whole tenths of `finished/total`, 0 when unknown."""
    if not progress or "/" not in progress:
        return 0
    finished, _, total = progress.partition("/")
    if not (finished.isdigit() and total.isdigit()) or int(total) == 0:
        return 0
    return int(finished) * PROGRESS_STEPS // int(total)


def _sla_exceeded(status: imagebatch.ImageBatchStatus) -> bool:
    return any(
        c.type == "SLAMet" and c.status == "False" and c.reason == "SLAExceeded"
        for c in status.conditions or ()
    )


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
