"""The metrics catalogue: bounded labels, units in names, and the operator's series count
with 200 tenants in 3 regions under a stated bound."""

from collections.abc import Iterator

import pytest
from prometheus_client import Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from imagegen.metrics import books, gateway, labels, operator, worker

REGISTRIES = {"operator": operator.REGISTRY, "worker": worker.REGISTRY, "gateway": gateway.REGISTRY}
SERIES_PER_TENANT_AND_REGION = 20
"""The stated bound: the operator's scrape holds at most this many series per tenant and
region (so 12,000 at 200 tenants in 3 regions)."""
GATEWAY_SERIES_PER_TENANT = 40
"""The stated bound for the gateway's scrape: at most this many series per tenant (so
8,000 at 200 tenants), each tenant using every route with its usual answers."""
TENANT_ROUTES_AND_CODES = {
    "/api/v1/batch/generate": ("202", "400", "409", "413", "422", "429"),
    "/api/v1/batches": ("200", "202", "422", "429"),
    "/api/v1/batches/{batch_id}": ("200", "404"),
    "/api/v1/batches/{batch_id}/cancel": ("202", "404", "409"),
    "/api/v1/batches/{batch_id}/events": ("200", "404", "406"),
    "/api/v1/batches/{batch_id}/images/{item_id}": ("200", "404"),
}
"""What a busy tenant's requests are answered with, by route template."""


def ours(module: object) -> list[Counter | Gauge | Histogram]:
    return [v for v in vars(module).values() if isinstance(v, Counter | Gauge | Histogram)]


def series(registry: CollectorRegistry) -> list[tuple[str, dict[str, str]]]:
    text = generate_latest(registry).decode()
    return [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@pytest.fixture
def clean_gateway() -> Iterator[None]:
    # Cleared before too: an in-process webhook service of an earlier test (in the same
    # pytest run) leaves its tenants' series behind.
    for metric in ours(gateway):
        metric.clear()
    yield
    for metric in ours(gateway):
        metric.clear()


@pytest.fixture
def clean_operator() -> Iterator[None]:
    yield
    for metric in ours(operator):
        metric.clear()
    operator.BATCHES.__init__()  # type: ignore[misc]
    operator.QUEUES.__init__()  # type: ignore[misc]


@pytest.mark.parametrize("module", [operator, worker, gateway])
def test_every_metric_has_help_and_only_bounded_labels(module: object) -> None:
    for metric in ours(module):
        assert metric._documentation, metric._name
        assert set(metric._labelnames) <= labels.ALLOWED, metric._name


@pytest.mark.parametrize("module", [operator, worker, gateway])
def test_names_carry_their_unit_and_counters_end_in_total(module: object) -> None:
    for metric in ours(module):
        assert metric._name.startswith("imagegen_"), metric._name
        if isinstance(metric, Histogram):
            assert metric._name.endswith("_seconds"), metric._name
    text = generate_latest(module.REGISTRY).decode()  # type: ignore[attr-defined]
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            assert any(s.name.endswith("_total") for s in family.samples) or not family.samples


def test_no_metric_is_defined_twice_across_the_processes() -> None:
    names = [metric._name for module in (operator, worker, gateway) for metric in ours(module)]
    assert len(names) == len(set(names))


def test_a_scrape_shows_no_label_outside_the_bounded_set(clean_operator: None) -> None:
    operator.BATCHES_REJECTED.labels(tenant=labels.UNKNOWN_TENANT, reason="TenantNotFound").inc()
    operator.BATCHES.record(
        uid="u1", entry=books.BatchEntry(tenant="acme", tier="priority", phase="Queued")
    )
    for registry in REGISTRIES.values():
        assert labels.offending(registry) == []


def test_200_tenants_in_3_regions_stay_under_the_stated_series_bound(
    clean_operator: None,
) -> None:
    tenants = [f"tenant-{n:03}" for n in range(200)]
    regions = ["us-east", "eu-west", "asia-pacific"]
    reasons = ["NamespaceNotOwned", "BatchTooLarge", "ProviderNotAllowed", "TooManyActiveBatches"]
    for tenant in tenants:
        operator.BATCHES_ADMITTED.labels(tenant=tenant, tier="standard").inc()
        operator.SLA_MET.labels(tenant=tenant, tier="standard").inc()
        operator.SLA_MISSED.labels(tenant=tenant, tier="standard").inc()
        for reason in reasons:
            operator.BATCHES_REJECTED.labels(tenant=tenant, reason=reason).inc()
        for number, phase in enumerate(
            ["Pending", "Queued", "Running", "Succeeded", "PartiallySucceeded", "Failed"]
        ):
            operator.BATCHES.record(
                uid=f"{tenant}-{number}",
                entry=books.BatchEntry(tenant=tenant, tier="standard", phase=phase),
            )
        for region in regions:
            operator.FAILOVERS.labels(tenant=tenant, region=region).inc()
            operator.QUEUE_DATA_LOST.labels(tenant=tenant, region=region).inc()
            operator.LEFTOVERS_CANCELLED.labels(tenant=tenant, region=region).inc(3)
            for gauge in operator.POOL_GAUGES:
                gauge.labels(tenant=tenant, region=region).set(3)
    for region in regions:
        operator.REGION_REACHABLE.labels(region=region, kind="kubernetes").set(1)
        operator.REGION_REACHABLE.labels(region=region, kind="redis").set(1)
        operator.DISPATCH_SECONDS.labels(region=region).observe(0.3)
        operator.QUEUES.replace_region(
            region=region,
            lanes={
                (tenant, lane, region): books.LaneSample(queued=5, oldest_age_seconds=2.0)
                for tenant in tenants
                for lane in ("high", "normal", "low")
            },
        )
    for kind in ("Tenant", "ImageBatch"):
        operator.RECONCILE_SECONDS.labels(kind=kind).observe(0.1)
        operator.LAST_RECONCILE.labels(kind=kind).set(1)

    count = len(series(operator.REGISTRY))

    bound = SERIES_PER_TENANT_AND_REGION * len(tenants) * len(regions)
    print(f"operator scrape at 200 tenants x 3 regions: {count} series (bound {bound})")
    assert count <= bound
    # Every one of those tenants is really in the scrape, so the count is not vacuous.
    scraped = {labels_["tenant"] for _, labels_ in series(operator.REGISTRY) if "tenant" in labels_}
    assert scraped == set(tenants)


def test_200_tenants_on_the_gateway_stay_under_the_stated_series_bound(
    clean_gateway: None,
) -> None:
    tenants = [f"tenant-{n:03}" for n in range(200)]
    for tenant in tenants:
        for route, codes in TENANT_ROUTES_AND_CODES.items():
            for code in codes:
                gateway.TENANT_REQUESTS.labels(tenant=tenant, route=route, code=code).inc()
        gateway.RATE_LIMITED.labels(tenant=tenant).inc()
        gateway.RATE_LIMIT_REMAINING.labels(tenant=tenant).set(7)
        gateway.BATCHES_CREATED.labels(tenant=tenant).inc()
        gateway.IMAGES_REQUESTED.labels(tenant=tenant).inc(100)
        gateway.IDEMPOTENT_REPLAYS.labels(tenant=tenant).inc()
        for kind in ("websocket", "sse"):
            gateway.STREAMS.labels(tenant=tenant, kind=kind).set(1)
        for status in (200, 301, 410, 503, None):
            gateway.WEBHOOK_DELIVERIES.labels(tenant, gateway.code_class(status)).inc()
        for reason in ("exhausted", "gone", "refused"):
            gateway.WEBHOOK_FAILURES.labels(tenant=tenant, reason=reason).inc()
        gateway.WEBHOOK_RETRIES.labels(tenant=tenant).inc()
    for route, codes in TENANT_ROUTES_AND_CODES.items():
        for code in (*codes, "401"):
            gateway.REQUESTS.labels(route=route, method="POST", code=code).inc()
        gateway.REQUEST_SECONDS.labels(route=route, method="POST").observe(0.02)
    gateway.WEBHOOK_OUTBOX.set(3)

    count = len(series(gateway.REGISTRY))

    bound = GATEWAY_SERIES_PER_TENANT * len(tenants)
    print(f"gateway scrape at 200 tenants: {count} series (bound {bound})")
    assert count <= bound
    scraped = {labels_["tenant"] for _, labels_ in series(gateway.REGISTRY) if "tenant" in labels_}
    assert scraped == set(tenants)
    assert labels.offending(gateway.REGISTRY) == []


@pytest.mark.parametrize(
    ("status", "label"),
    [(200, "2xx"), (204, "2xx"), (410, "4xx"), (503, "5xx"), (None, "none"), (999, "none")],
)
def test_a_webhook_answer_is_counted_by_its_class_never_its_exact_code(
    status: int | None, label: str
) -> None:
    assert gateway.code_class(status) == label


def test_an_http_method_outside_the_known_ones_is_other() -> None:
    assert [gateway.method(m) for m in ("GET", "POST", "BREW", "get")] == [
        "GET", "POST", "other", "other",
    ]  # fmt: skip
