"""A real Prometheus scrapes the real operator and workers while batches run for two
tenants; then every PromQL expression of the dashboard and the alert rules is evaluated
through its HTTP API, promtool lints real scrapes, and the logs of the run tell each
batch's story by its correlation id without ever showing a tenant's API key."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import pathlib
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import lightkube
import pytest
from lightkube.resources import core_v1

from imagegen import resources
from imagegen.api import meta
from imagegen.controller import apikeys
from imagegen.localcluster import cluster, prometheus, redis
from imagegen.metrics import alerts, dashboard, files
from tests import builders
from tests.integration import operatorproc, waiting, workerproc
from tests.integration.tenantworld import World, unique_name

REGION = "us-east"
ITEMS = 24
COST_SECONDS = "0.5"
"""Each image takes this long on top of drawing it, so a batch spans several scrapes."""
REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(kw_only=True)
class Run:
    """What one run of two tenants' batches left behind."""

    tenants: tuple[str, str]
    uids: dict[str, str]
    """Batch uid by tenant."""
    correlation_id: str
    """The annotation on the first tenant's batch; the second's batch has none."""
    server: prometheus.LocalPrometheus
    operator: operatorproc.OperatorProcess
    workers: list[workerproc.WorkerProcess]
    scrapes: dict[str, str]
    """The /metrics text of the operator and of each worker, read after the batches."""


def new_tenant(world: World) -> str:
    name = unique_name("prom")
    world.create(
        builders.make_tenant(name)
        .tier("priority")
        .namespace(f"tenant-{name}")
        .regions(REGION)
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
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    world = World(kube=kube, regions=regions)
    server = prometheus.start(
        binary=binaries["prometheus"],
        workdir=tmp_path_factory.mktemp("prometheus"),
        targets={"imagegen-operator": [running_operator.metrics_address]},
        rule_files=[REPO / "manifests" / "monitoring" / files.RULES],
    )
    storage = tmp_path_factory.mktemp("prom-run")
    pools: list[workerproc.Workers] = []
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
        correlation_id = f"req-{uuid.uuid4().hex[:12]}"
        names = {
            tenants[0]: submit(world, tenants[0], correlation_id=correlation_id),
            tenants[1]: submit(world, tenants[1], correlation_id=None),
        }
        uids = {
            tenant: str(wait_succeeded(world, tenant, name)["metadata"]["uid"])
            for tenant, name in names.items()
        }
        waiting.until(
            lambda: seen_whole_story(server),
            timeout=60,
            what="Prometheus to scrape both tenants' finished batches",
        )
        scrapes = {"operator": scrape(running_operator.metrics_address)}
        scrapes.update(
            {f"worker-{n}": scrape(f"127.0.0.1:{w.port}") for n, w in enumerate(started)}
        )
        yield Run(
            tenants=tenants,
            uids=uids,
            correlation_id=correlation_id,
            server=server,
            operator=running_operator,
            workers=started,
            scrapes=scrapes,
        )
    finally:
        for pool in pools:
            pool.stop_all()
        server.stop()


def seen_whole_story(server: prometheus.LocalPrometheus) -> bool:
    """Both tenants' SLA counters are in, and each worker's final count was scraped twice
    (a rate needs two samples)."""
    finished = server.query(
        f"count_over_time((sum by (tenant) (imagegen_worker_images_generated_total) == {ITEMS})"
        f"[1m:{prometheus.SCRAPE_SECONDS}s]) >= 2"
    )
    met = server.query("sum by (tenant) (imagegen_batches_sla_met_total)")
    return len(finished) == 2 and len(met) == 2


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


@pytest.mark.parametrize("process", ["operator", "worker-0"])
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


def test_no_tenants_api_key_appears_in_any_log_or_scrape(run: Run, kube: lightkube.Client) -> None:
    keys = []
    for tenant in run.tenants:
        secret = kube.get(core_v1.Secret, apikeys.secret_name(tenant), namespace=f"tenant-{tenant}")
        assert secret.data
        keys += [base64.b64decode(value).decode() for value in secret.data.values()]
    assert keys
    assert all(key.startswith(apikeys.KEY_PREFIX) for key in keys)
    texts = [run.operator.log(), *(w.log() for w in run.workers), *run.scrapes.values()]
    for key in keys:
        assert all(key not in text for text in texts)
