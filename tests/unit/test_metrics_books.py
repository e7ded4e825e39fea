"""The operator's in-memory books as Prometheus reads them: batches by phase, batches at
risk of their deadline, and the latest queue sample per region."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from imagegen.metrics import books, serve

NOW = 1_700_000_000.0


def samples(
    collector: books.BatchBook | books.QueueBook,
) -> dict[tuple[str, tuple[str, ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.values()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def entry(phase: str, *, deadline_in: float | None, tier: str = "priority") -> books.BatchEntry:
    return books.BatchEntry(
        tenant="acme",
        tier=tier,
        phase=phase,
        deadline=None if deadline_in is None else NOW + deadline_in,
        done=phase in {"Succeeded", "Failed"},
    )


def test_batches_are_counted_by_tenant_tier_and_phase() -> None:
    book = books.BatchBook(clock=lambda: NOW)
    book.record(uid="1", entry=entry("Running", deadline_in=200))
    book.record(uid="2", entry=entry("Running", deadline_in=250))
    book.record(uid="3", entry=entry("Succeeded", deadline_in=10))
    seen = samples(book)
    assert seen[("imagegen_batches", ("Running", "acme", "priority"))] == 2
    assert seen[("imagegen_batches", ("Succeeded", "acme", "priority"))] == 1


def test_a_batch_within_a_minute_of_its_deadline_and_unfinished_is_at_risk() -> None:
    book = books.BatchBook(clock=lambda: NOW)
    book.record(uid="due-soon", entry=entry("Running", deadline_in=30))
    book.record(uid="plenty-of-time", entry=entry("Running", deadline_in=200))
    book.record(uid="finished", entry=entry("Succeeded", deadline_in=30))
    book.record(uid="already-late", entry=entry("Running", deadline_in=-5))
    book.record(uid="not-admitted", entry=entry("Pending", deadline_in=None))
    assert samples(book)[("imagegen_batches_at_risk", ("acme", "priority"))] == 1


def test_a_tenant_with_no_batch_at_risk_reads_zero_and_a_forgotten_batch_is_gone() -> None:
    book = books.BatchBook(clock=lambda: NOW)
    book.record(uid="1", entry=entry("Running", deadline_in=30))
    book.record(uid="1", entry=entry("Succeeded", deadline_in=30))
    assert samples(book)[("imagegen_batches_at_risk", ("acme", "priority"))] == 0
    book.forget(uid="1")
    assert samples(book) == {}


def test_a_region_sample_replaces_the_previous_one_whole() -> None:
    book = books.QueueBook()
    lane = books.LaneSample(queued=4, oldest_age_seconds=2.5)
    book.replace_region(region="us-east", lanes={("acme", "high", "us-east"): lane})
    book.replace_region(region="eu-west", lanes={("acme", "low", "eu-west"): lane})
    book.replace_region(region="us-east", lanes={})
    assert samples(book) == {
        ("imagegen_queue_depth", ("acme", "eu-west", "low")): 4,
        ("imagegen_queue_oldest_item_age_seconds", ("acme", "eu-west", "low")): 2.5,
    }


def test_the_metrics_url_is_parsed() -> None:
    assert serve.parse("http://10.0.0.7:9090/metrics") == serve.Endpoint(
        host="10.0.0.7", port=9090, path="/metrics"
    )
    assert serve.parse("http://127.0.0.1:9100").path == "/metrics"


@pytest.mark.parametrize("bad", ["https://x:1/metrics", "http://host/metrics", "0.0.0.0:9090"])
def test_a_bad_metrics_url_names_the_option(bad: str) -> None:
    with pytest.raises(ValueError, match="--metrics"):
        serve.parse(bad)
