"""A real Prometheus scrapes the real operator, gateway and workers while batches run for
two tenants (the first submitted through the gateway with a webhook, both tenants pushed
past their rate limit); then every PromQL expression of the dashboard and the alert rules
is evaluated through its HTTP API, promtool lints real scrapes, and the logs of the run
tell each batch's story by its correlation id without ever showing a tenant's API key or
webhook secret."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import pathlib
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import lightkube
import pytest
import redis as redis_sync
from lightkube.resources import core_v1

from imagegen import resources
from imagegen.api import meta
from imagegen.controller import apikeys, webhooksecrets
from imagegen.gateway.webhooks import keys as webhook_keys
from imagegen.localcluster import cluster, prometheus, redis
from imagegen.metrics import alerts, dashboard, files
from tests import builders
from tests.integration import gatewayproc, operatorproc, waiting, workerproc
from tests.integration.conftest import GATEWAY_WEBHOOK_HOST
from tests.integration.tenantworld import World, unique_name
from tests.integration.webhookreceiver import ThreadedReceiver

REGION = "us-east"
ITEMS = 24
COST_SECONDS = "0.5"
"""Each image takes this long on top of drawing it, so a batch spans several scrapes."""
REPO = pathlib.Path(__file__).resolve().parents[2]
REQUESTS_PER_MINUTE = 6
BURST = 3
"""Each tenant's rate limit: a burst of 3, then one request every 10 s, so a handful of
requests in a row is sure to see 429s."""
OVER_THE_LIMIT = BURST + 2
"""Requests each tenant sends in a row once its batch is in: at least two are refused."""


@dataclasses.dataclass(kw_only=True)
class Run:
    """What one run of two tenants' batches left behind."""

    tenants: tuple[str, str]
    uids: dict[str, str]
    """Batch uid by tenant."""
    correlation_id: str
    """The gateway's request id for the first tenant's submission (its X-Request-Id); the
    second's batch, created directly, has no correlation annotation."""
    annotations: dict[str, str]
    """The first tenant's batch's annotations, as the gateway created it."""
    refused: dict[str, int]
    """Requests answered 429, by tenant."""
    server: prometheus.LocalPrometheus
    operator: operatorproc.OperatorProcess
    gateway: gatewayproc.GatewayProcess
    workers: list[workerproc.WorkerProcess]
    scrapes: dict[str, str]
    """The /metrics text of the operator, the gateway and each worker, read after the
    batches."""


def new_tenant(world: World) -> str:
    name = unique_name("prom")
    world.create(
        builders.make_tenant(name)
        .tier("priority")
        .namespace(f"tenant-{name}")
        .regions(REGION)
        .rate_limit(requests_per_minute=REQUESTS_PER_MINUTE, burst=BURST)
        .obj()
    )
    world.wait_reconciled(name, timeout=120)
    return name


def submit(world: World, tenant: str, *, correlation_id: str | None) -> str:
    obj = (
        builders.make_batch(unique_name("batch"), tenant=tenant)
        .namespace(f"tenant-{tenant}")
        .items(ITEMS, size="64x64")
        .obj()
    )
    if correlation_id:
        obj["metadata"]["annotations"] = {meta.CORRELATION_ANNOTATION: correlation_id}
    created = world.create(obj)
    return str(created["metadata"]["name"])


def api_key(kube: lightkube.Client, tenant: str) -> str:
    secret = kube.get(core_v1.Secret, apikeys.secret_name(tenant), namespace=f"tenant-{tenant}")
    assert secret.data
    return base64.b64decode(secret.data["api-key"]).decode()


def gateway_client(gateway: gatewayproc.GatewayProcess, key: str) -> httpx.Client:
    """A client of the gateway whose key the gateway already knows (the operator publishes
    the key index; the gateway watches it)."""
    http = httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    waiting.until(
        lambda: http.get("/api/v1/batches").status_code == 200,
        timeout=90,
        what="the gateway to accept the tenant's key",
    )
    return http


def submit_through_gateway(http: httpx.Client, *, webhook_url: str) -> httpx.Response:
    body = {
        "items": [{"prompt": f"a lighthouse, take {n}", "size": "64x64"} for n in range(ITEMS)],
        "webhook": {"url": webhook_url},
    }
    answer = http.post("/api/v1/batches", json=body)
    assert answer.status_code == 202, answer.text
    return answer


def exceed_the_rate_limit(http: httpx.Client) -> int:
    """Send OVER_THE_LIMIT requests in a row; how many were refused with 429."""
    codes = [http.get("/api/v1/batches").status_code for _ in range(OVER_THE_LIMIT)]
    assert set(codes) <= {200, 429}, codes
    return codes.count(429)


def wait_succeeded(world: World, tenant: str, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = world.kube.get(resources.ImageBatch, name, namespace=f"tenant-{tenant}").to_dict()
        return found if (found.get("status") or {}).get("phase") == "Succeeded" else None

    return waiting.until(done, timeout=180, what=f"{name} Succeeded")


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


@pytest.fixture(scope="module")
def run(
    binaries: dict[str, pathlib.Path],
    kube: lightkube.Client,
    regions: dict[str, cluster.LocalCluster],
    region_redis: dict[str, redis.LocalRedis],
    running_operator: operatorproc.OperatorProcess,
    running_gateway: gatewayproc.GatewayProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    world = World(kube=kube, regions=regions)
    server = prometheus.start(
        binary=binaries["prometheus"],
        workdir=tmp_path_factory.mktemp("prometheus"),
        targets={
            "imagegen-operator": [running_operator.metrics_address],
            "imagegen-gateway": [f"127.0.0.1:{running_gateway.port}"],
        },
        rule_files=[REPO / "manifests" / "monitoring" / files.RULES],
    )
    storage = tmp_path_factory.mktemp("prom-run")
    pools: list[workerproc.Workers] = []
    receiving = ThreadedReceiver(host=GATEWAY_WEBHOOK_HOST)
    receiver = receiving.__enter__()
    try:
        tenants = (new_tenant(world), new_tenant(world))
        started = []
        for tenant in tenants:
            pool = workerproc.Workers(
                redis_url=region_redis[REGION].url, storage=storage / "out",
                logs=storage / f"logs-{tenant}", tenant=tenant, region=REGION,
                log_format="json",
            )  # fmt: skip
            pools.append(pool)
            started.append(
                asyncio.run(
                    pool.start("--concurrency", "4", "--simulated-cost-seconds", COST_SECONDS)
                )
            )
        server.set_targets(
            job="imagegen-worker", targets=[f"127.0.0.1:{worker.port}" for worker in started]
        )
        # Batches go in once Prometheus scrapes both workers, so it sees their counts rise.
        waiting.until(
            lambda: len(server.query("imagegen_worker_images_generated_total == 0")) == 2,
            timeout=60,
            what="Prometheus to scrape both workers",
        )
        clients = [gateway_client(running_gateway, api_key(kube, tenant)) for tenant in tenants]
        submitted = submit_through_gateway(clients[0], webhook_url=receiver.url)
        names = {
            tenants[0]: str(submitted.json()["id"]),
            tenants[1]: submit(world, tenants[1], correlation_id=None),
        }
        refused = {
            tenant: exceed_the_rate_limit(c) for tenant, c in zip(tenants, clients, strict=True)
        }
        for client in clients:
            client.close()
        finished = {tenant: wait_succeeded(world, tenant, name) for tenant, name in names.items()}
        uids = {tenant: str(obj["metadata"]["uid"]) for tenant, obj in finished.items()}
        waiting.until(
            lambda: receiver.ok(), timeout=60, what="the first tenant's webhook delivered"
        )
        waiting.until(
            lambda: seen_whole_story(server, tenants),
            timeout=60,
            what="Prometheus to scrape both tenants' finished batches",
        )
        scrapes = {
            "operator": scrape(running_operator.metrics_address),
            "gateway": scrape(f"127.0.0.1:{running_gateway.port}"),
        }
        scrapes.update(
            {f"worker-{n}": scrape(f"127.0.0.1:{w.port}") for n, w in enumerate(started)}
        )
        yield Run(
            tenants=tenants,
            uids=uids,
            correlation_id=str(submitted.headers["x-request-id"]),
            annotations=dict(finished[tenants[0]]["metadata"].get("annotations") or {}),
            refused=refused,
            server=server,
            operator=running_operator,
            gateway=running_gateway,
            workers=started,
            scrapes=scrapes,
        )
    finally:
        receiving.__exit__(None, None, None)
        for pool in pools:
            pool.stop_all()
        server.stop()


def seen_whole_story(server: prometheus.LocalPrometheus, tenants: tuple[str, str]) -> bool:
    """Both tenants' SLA counters are in, each worker's final count, both tenants' 429s and
    the first tenant's webhook delivery were scraped twice (a rate needs two samples)."""
    twice = f"[1m:{prometheus.SCRAPE_SECONDS}s]) >= 2"
    finished = server.query(
        f"count_over_time((sum by (tenant) (imagegen_worker_images_generated_total) == {ITEMS})"
        + twice
    )
    ours = f'tenant=~"{"|".join(tenants)}"'
    # Other tenants of the session have counters too (at 0, from their first reconcile).
    met = server.query(f"sum by (tenant) (imagegen_batches_sla_met_total{{{ours}}}) >= 1")
    limited = server.query(
        f"count_over_time((sum by (tenant) (imagegen_gateway_rate_limited_total{{{ours}}}))" + twice
    )
    first = f'tenant="{tenants[0]}"'
    delivered = server.query(
        f"count_over_time((sum by (tenant) (imagegen_webhook_deliveries_total{{{first}}}))" + twice
    )
    return len(finished) == 2 and len(met) == 2 and len(limited) == 2 and len(delivered) == 1


def dashboard_queries() -> list[tuple[dashboard.Panel, str]]:
    return [(panel, expr) for panel in dashboard.PANELS for _, expr in panel.queries]


def with_variables(expr: str, *, tenant: str = ".*", region: str = ".*") -> str:
    return expr.replace("$tenant", tenant).replace("$region", region)


def test_every_dashboard_and_alert_expression_evaluates_without_error(run: Run) -> None:
    expressions = [with_variables(expr) for _, expr in dashboard_queries()]
    expressions += [with_variables(expr, tenant=run.tenants[0]) for _, expr in dashboard_queries()]
    expressions += [alert.expr for alert in alerts.ALERTS]
    for expr in expressions:
        run.server.query(expr)  # raises PrometheusError, naming the query, on any error


def test_prometheus_loads_every_alert_rule_and_evaluates_it_healthily(run: Run) -> None:
    def rules() -> list[dict[str, Any]] | None:
        loaded = [r for g in run.server.api("rules")["groups"] for r in g["rules"]]
        return loaded if loaded and all(r["health"] == "ok" for r in loaded) else None

    loaded = waiting.until(rules, timeout=30, what="every rule evaluated")
    assert {rule["name"] for rule in loaded} == {alert.name for alert in alerts.ALERTS}


@pytest.mark.parametrize(
    "panel", [p for p in dashboard.PANELS if p.core], ids=lambda panel: panel.title
)
def test_core_panels_show_both_tenants_and_nothing_of_the_other(
    run: Run, panel: dashboard.Panel
) -> None:
    for _, expr in panel.queries:
        everyone = run.server.query(with_variables(expr))
        assert set(run.tenants) <= {s["metric"].get("tenant") for s in everyone}, expr
        for tenant in run.tenants:
            mine = run.server.query(with_variables(expr, tenant=tenant))
            assert mine, f"{expr} shows nothing for {tenant}"
            assert {s["metric"].get("tenant") for s in mine} == {tenant}, expr


def panel(title: str) -> dashboard.Panel:
    (found,) = [p for p in dashboard.PANELS if p.title == title]
    return found


def shown_tenants(run: Run, expr: str, **variables: str) -> set[str | None]:
    return {s["metric"].get("tenant") for s in run.server.query(with_variables(expr, **variables))}


def test_each_tenant_was_refused_by_its_rate_limit_during_the_run(run: Run) -> None:
    assert all(count >= OVER_THE_LIMIT - BURST for count in run.refused.values()), run.refused


@pytest.mark.parametrize("title", ["Rate limiting", "Gateway requests"])
def test_the_gateway_panels_show_both_tenants_and_nothing_of_the_other(
    run: Run, title: str
) -> None:
    for _, expr in panel(title).queries:
        if "$tenant" not in expr:
            continue  # latency by route: no tenant label
        assert set(run.tenants) <= shown_tenants(run, expr), expr
        for tenant in run.tenants:
            assert shown_tenants(run, expr, tenant=tenant) == {tenant}, expr


def test_the_gateway_counts_each_tenants_refusals_as_it_answered_them(run: Run) -> None:
    for tenant, refused in run.refused.items():
        limited = run.server.query(f'imagegen_gateway_rate_limited_total{{tenant="{tenant}"}}')
        answered = run.server.query(
            f'sum(imagegen_gateway_tenant_requests_total{{tenant="{tenant}", code="429"}})'
        )
        assert [float(s["value"][1]) for s in limited] == [refused]
        assert [float(s["value"][1]) for s in answered] == [refused]


def test_the_webhooks_panel_shows_the_delivery_of_the_tenant_that_asked_for_one(
    run: Run,
) -> None:
    first, second = run.tenants
    deliveries = panel("Webhooks").queries[0][1]
    assert first in shown_tenants(run, deliveries)
    assert shown_tenants(run, deliveries, tenant=first) == {first}
    assert shown_tenants(run, deliveries, tenant=second) == set()
    delivered = run.server.query(
        f'imagegen_webhook_deliveries_total{{tenant="{first}", code="2xx"}}'
    )
    assert [float(s["value"][1]) for s in delivered] == [1.0]
    # The outbox is the session gateway's, shared with other tests' receivers that may be
    # down for good; so the panel draws one series, and none of its entries is this run's.
    outbox = run.server.query(panel("Webhooks").queries[2][1])
    assert len(outbox) == 1
    assert first not in outbox_tenants(run.gateway)


def outbox_tenants(gateway: gatewayproc.GatewayProcess) -> set[str]:
    """The tenants of the deliveries still in the gateway's outbox."""
    client = redis_sync.Redis.from_url(gateway.redis_url, decode_responses=True)
    try:
        entries = client.xrange(webhook_keys.stream())
    finally:
        client.close()
    return {fields["tenant"] for _, fields in entries}


def test_the_gateway_scrape_names_no_batch_key_or_url(run: Run, kube: lightkube.Client) -> None:
    scraped = run.scrapes["gateway"]
    assert all(f'tenant="{tenant}"' in scraped for tenant in run.tenants)
    assert all(uid not in scraped for uid in run.uids.values())
    assert "/hooks/imagegen" not in scraped
    assert "batch-" not in scraped


def test_throughput_shows_each_tenants_images_made_during_the_run(run: Run) -> None:
    made = run.server.query(
        "sum by (tenant) (increase(imagegen_worker_images_generated_total[5m]))"
    )
    assert {s["metric"]["tenant"] for s in made if float(s["value"][1]) > 0} == set(run.tenants)


def test_the_operator_counts_each_tenants_admitted_and_sla_met_batch(run: Run) -> None:
    for tenant in run.tenants:
        admitted = run.server.query(f'imagegen_batches_admitted_total{{tenant="{tenant}"}}')
        met = run.server.query(f'imagegen_batches_sla_met_total{{tenant="{tenant}"}}')
        assert [float(s["value"][1]) for s in admitted] == [1.0]
        assert [(s["metric"]["tier"], float(s["value"][1])) for s in met] == [("priority", 1.0)]


@pytest.mark.parametrize("process", ["operator", "gateway", "worker-0"])
def test_promtool_check_metrics_is_clean_on_a_real_scrape(
    run: Run, binaries: dict[str, pathlib.Path], process: str
) -> None:
    result = subprocess.run(
        [str(binaries["promtool"]), "check", "metrics"],
        input=run.scrapes[process], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imagegen_" in run.scrapes[process]


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON lines of a log (a worker started with -v also prints Python warnings)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_the_gateway_gives_its_request_id_to_the_batch_as_correlation_id(run: Run) -> None:
    assert run.correlation_id.startswith("req-")
    assert run.annotations[meta.CORRELATION_ANNOTATION] == run.correlation_id


def test_the_gateways_json_log_tells_the_submission_under_its_request_id(run: Run) -> None:
    first = run.tenants[0]
    lines = [
        line
        for line in log_lines(run.gateway.log())
        if line.get("correlation_id") == run.correlation_id
    ]
    assert any("created batch" in line["msg"] for line in lines), lines
    assert {line["tenant"] for line in lines} == {first}
    delivered = [
        line
        for line in log_lines(run.gateway.log())
        if line.get("tenant") == first and "delivered" in line["msg"]
    ]
    assert delivered, "the webhook delivery is logged with its tenant"


def test_one_correlation_id_finds_the_batch_in_operator_and_worker_logs(run: Run) -> None:
    first = run.tenants[0]
    operator_lines = [
        line
        for line in log_lines(run.operator.log())
        if line.get("correlation_id") == run.correlation_id
    ]
    worker_lines = [
        line
        for worker in run.workers
        for line in log_lines(worker.log())
        if line.get("correlation_id") == run.correlation_id
    ]
    assert any("dispatched" in line["msg"] for line in operator_lines)
    assert sum("stored by" in line["msg"] for line in worker_lines) == ITEMS
    for line in operator_lines + worker_lines:
        assert (line["tenant"], line["batch"]) == (first, run.uids[first])
    assert {line.get("region") for line in worker_lines} == {REGION}


def test_a_batch_without_the_annotation_is_followed_by_its_uid(run: Run) -> None:
    second = run.tenants[1]
    uid = run.uids[second]
    assert any(line.get("correlation_id") == uid for line in log_lines(run.operator.log()))
    assert any(
        line.get("correlation_id") == uid for w in run.workers for line in log_lines(w.log())
    )


def test_no_api_key_or_webhook_secret_appears_in_any_log_or_scrape(
    run: Run, kube: lightkube.Client
) -> None:
    keys, webhook_secrets = [], []
    for tenant in run.tenants:
        secret = kube.get(core_v1.Secret, apikeys.secret_name(tenant), namespace=f"tenant-{tenant}")
        assert secret.data
        for name, value in secret.data.items():
            decoded = base64.b64decode(value).decode()
            (webhook_secrets if name == "webhook-secret" else keys).append(decoded)
    assert keys
    assert all(key.startswith(apikeys.KEY_PREFIX) for key in keys)
    assert len(webhook_secrets) == len(run.tenants)
    assert all(s.startswith(webhooksecrets.SECRET_PREFIX) for s in webhook_secrets)
    # The secret as it signs: the base64 part of whsec_..., in case it were logged bare.
    signing_keys = [s.removeprefix(webhooksecrets.SECRET_PREFIX) for s in webhook_secrets]
    texts = [
        run.operator.log(),
        run.gateway.log(),
        *(w.log() for w in run.workers),
        *run.scrapes.values(),
    ]
    for secret in keys + webhook_secrets + signing_keys:
        assert all(secret not in text for text in texts)
