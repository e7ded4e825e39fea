"""The alert rules and dashboard: committed files match their one source, every alert has
a runbook, and every dashboard query is scoped by the tenant and region variables."""

import json
import pathlib
import re

import pytest
import yaml

from imagegen.metrics import alerts, dashboard, files

REPO = pathlib.Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"
RENDERED = files.render_all()


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_committed_file_matches_its_source(name: str) -> None:
    path = MONITORING / name
    assert path.exists(), f"{path} is missing: run `make monitoring`"
    assert path.read_text() == RENDERED[name], (
        f"{path} is stale: run `make monitoring` and commit the result"
    )


def test_the_prometheusrule_and_the_plain_file_hold_the_same_rules() -> None:
    plain = yaml.safe_load(RENDERED[files.RULES])
    resource = yaml.safe_load(RENDERED[files.PROMETHEUS_RULE])
    assert resource["kind"] == "PrometheusRule"
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["spec"] == plain


def test_issue_9s_and_19s_alerts_are_all_there() -> None:
    assert {alert.name for alert in alerts.ALERTS} == {
        "PremiumPoolShortOfCapacity",
        "PremiumBatchAtRisk",
        "BatchSLAMissed",
        "RegionUnreachable",
        "QueueBacklogGrowingAtMaxReplicas",
        "TenantErrorRateHigh",
        "WebhookDeliveriesFailing",
        "TenantRateLimitedSustained",
        "OperatorNotReconciling",
    }


def test_every_alert_has_a_runbook_section_with_meaning_checks_and_actions() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    for alert in alerts.ALERTS:
        match = re.search(rf"^### {alert.name}\n(.*?)(?=^#{{2,3}} |\Z)", text, re.M | re.S)
        assert match, f"docs/operations.md has no '### {alert.name}' section"
        for part in ("What it means", "What to check", "What to do"):
            assert part in match.group(1), f"{alert.name}: runbook lacks '{part}'"


def test_runbook_links_point_at_the_sections() -> None:
    for alert in alerts.ALERTS:
        assert alert.rule()["annotations"]["runbook_url"].endswith(f"#{alert.name.lower()}")


def test_dashboard_has_tenant_and_region_variables() -> None:
    board = json.loads(RENDERED[files.DASHBOARD])
    names = [variable["name"] for variable in board["templating"]["list"]]
    assert {"tenant", "region"} <= set(names)


def test_every_query_of_a_tenant_metric_is_filtered_by_the_tenant_variable() -> None:
    tenantless = ("imagegen_batch_dispatch", "imagegen_reconcile", "imagegen_region_reachable",
                  "imagegen_webhook_outbox", "imagegen_gateway_request_duration")  # fmt: skip
    for panel in dashboard.PANELS:
        for _, expr in panel.queries:
            if not expr.startswith(tenantless) and not any(t in expr for t in tenantless):
                assert '$tenant"' in expr, f"{panel.title}: {expr}"


def test_issue_9s_panels_are_all_there() -> None:
    titles = " ".join(panel.title.lower() for panel in dashboard.PANELS)
    for topic in ("throughput", "latency", "sla", "queue depth", "replicas", "rate limit",
                  "webhooks", "errors"):  # fmt: skip
        assert topic in titles, topic


def test_runbook_links_are_absolute_urls_of_the_charts_home() -> None:
    home = yaml.safe_load((REPO / "charts" / "imagegen" / "Chart.yaml").read_text())["home"]
    for alert in alerts.ALERTS:
        url = alert.rule()["annotations"]["runbook_url"]
        assert url.startswith(f"{home}/blob/main/docs/operations.md#"), url
