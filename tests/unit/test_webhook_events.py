"""Which webhook events a batch's status stands for (the producer's pure half)."""

from __future__ import annotations

import datetime
import json

from imagegen.api import imagebatch
from imagegen.gateway.webhooks import events
from tests import builders

NOW = datetime.datetime(2026, 11, 26, 6, 0, tzinfo=datetime.UTC)
ALL: tuple[imagebatch.WebhookEvent, ...] = (
    "queued", "running", "progress", "succeeded", "partiallySucceeded", "failed", "cancelled",
    "rejected", "expired",
)  # fmt: skip


def batch(*subscribed: imagebatch.WebhookEvent) -> builders.BatchBuilder:
    return (
        builders.make_batch("b1")
        .uid("6f1c0a4e-0000-4000-8000-000000000001")
        .webhook("https://hooks.example.com/x", *subscribed)
    )


def types(body: dict[str, object]) -> list[tuple[str, int]]:
    return [(e.type, e.step) for e in events.for_batch(body, now=NOW)]


def test_a_batch_without_a_webhook_has_no_events() -> None:
    body = builders.make_batch().uid("u").phase("Succeeded").obj()

    assert events.for_batch(body, now=NOW) == []


def test_by_default_only_the_events_that_end_a_batch_are_sent() -> None:
    assert types(batch().phase("Running").status(progress="50/100").obj()) == []
    assert types(batch().phase("Succeeded").status(progress="100/100").obj()) == [
        ("batch.completed", 0)
    ]


def test_progress_is_sent_per_whole_tenth_while_running() -> None:
    def at(progress: str) -> list[tuple[str, int]]:
        return types(batch(*ALL).phase("Running").status(progress=progress).obj())

    assert at("0/100") == [("batch.queued", 0), ("batch.started", 0)]
    assert at("9/100")[2:] == []
    assert at("10/100")[2:] == [("batch.progress", 1)]
    assert at("37/100")[2:] == [("batch.progress", 3)]
    assert at("99/100")[2:] == [("batch.progress", 9)]
    assert at("7/7")[2:] == []  # 100 % is batch.completed, not progress


def test_each_phase_maps_to_its_event() -> None:
    expected = {
        "Pending": [],
        "Queued": [("batch.queued", 0)],
        "Succeeded": [("batch.queued", 0), ("batch.started", 0), ("batch.completed", 0)],
        "PartiallySucceeded": [("batch.queued", 0), ("batch.started", 0), ("batch.completed", 0)],
        "Failed": [("batch.queued", 0), ("batch.started", 0), ("batch.failed", 0)],
        "Rejected": [("batch.failed", 0)],
        "Cancelled": [("batch.cancelled", 0)],
    }
    for phase, wanted in expected.items():
        assert types(batch(*ALL).phase(phase).obj()) == wanted, phase  # type: ignore[arg-type]


def test_a_partial_success_is_sent_only_when_subscribed() -> None:
    body = batch("succeeded").phase("PartiallySucceeded").obj()

    assert types(body) == []


def test_a_passed_deadline_is_sent_as_expired_once_subscribed() -> None:
    breached = {
        "type": "SLAMet",
        "status": "False",
        "reason": "SLAExceeded",
        "message": "deadline passed",
        "lastTransitionTime": "2026-11-26T05:59:00Z",
    }
    body = batch("expired", "succeeded").phase("Running").status(conditions=[breached]).obj()

    assert types(body) == [("batch.expired", 0)]


def test_the_payload_carries_the_batch_and_the_message_id_is_stable() -> None:
    body = (
        batch("progress")
        .phase("Running")
        .status(
            progress="40/100",
            counts={"total": 100, "succeeded": 39, "failed": 1, "running": 5, "queued": 55},
            region="eu-west",
        )
    )
    first, again = events.for_batch(body.obj(), now=NOW), events.for_batch(body.obj(), now=NOW)

    assert (
        first[0].msg_id
        == again[0].msg_id
        == events.msg_id(
            batch_uid="6f1c0a4e-0000-4000-8000-000000000001", event_type="batch.progress", step=4
        )
    )
    payload = json.loads(first[0].body)
    assert payload["type"] == "batch.progress"
    assert payload["timestamp"] == "2026-11-26T06:00:00Z"
    assert payload["data"] == {
        "id": "b1",
        "uid": "6f1c0a4e-0000-4000-8000-000000000001",
        "namespace": "tenant-acme",
        "tenant": "acme",
        "status": "Running",
        "progress": "40/100",
        "percent": 40,
        "request_counts": {"total": 100, "queued": 55, "running": 5, "succeeded": 39, "failed": 1},
        "region": "eu-west",
        "deadline": None,
        "completed_at": None,
    }
    assert (first[0].tenant, first[0].url) == ("acme", "https://hooks.example.com/x")
