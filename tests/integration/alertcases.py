"""promtool unit tests of the alert rules: for every alert, series that fire it and
series that keep it quiet. Rendered to promtool's test file format by `test_file`.

Series use promtool's notation (`0+10x30`: 0, 10, 20, ... 31 samples a minute apart).
Expected annotations are computed from the rule's own templates, which use
{{ $labels.x }} only.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any

from imagegen.metrics import alerts

DELIVERED = 'imagegen_worker_deliveries_total{tenant="acme", region="us-east", phase="succeeded"}'
FAILED = 'imagegen_worker_deliveries_total{tenant="acme", region="us-east", phase="failed"}'
UNSCHEDULABLE = (
    'imagegen_pool_workers_unschedulable{{tenant="{tenant}", tier="{tier}", region="us-east"}}'
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Case:
    """One promtool test: series, one evaluation time, the alerts expected then."""

    alert: str
    story: str
    series: dict[str, str]
    at: str
    fires: list[dict[str, str]]
    """Output labels of each expected alert (without severity); [] when quiet."""


CASES: tuple[Case, ...] = (
    Case(
        alert="PremiumPoolShortOfCapacity",
        story="four GPU workers of a priority tenant stay unschedulable for six minutes",
        series={
            UNSCHEDULABLE.format(tenant="acme", tier="priority"): "0 4 4 4 4 4 4 4",
            UNSCHEDULABLE.format(tenant="bulk", tier="standard"): "0 9 9 9 9 9 9 9",
        },
        at="7m",
        fires=[{"tenant": "acme", "region": "us-east"}],
    ),
    Case(
        alert="PremiumPoolShortOfCapacity",
        story="room is freed after four minutes, before the alert's five",
        series={UNSCHEDULABLE.format(tenant="acme", tier="priority"): "0 4 4 4 4 0 0 0"},
        at="7m",
        fires=[],
    ),
    Case(
        alert="PremiumBatchAtRisk",
        story="a priority batch is a minute from its deadline",
        series={'imagegen_batches_at_risk{tenant="acme", tier="priority"}': "0 0 1 1"},
        at="3m",
        fires=[{"tenant": "acme"}],
    ),
    Case(
        alert="PremiumBatchAtRisk",
        story="only a standard-tier batch is at risk",
        series={
            'imagegen_batches_at_risk{tenant="acme", tier="priority"}': "0 0 0 0",
            'imagegen_batches_at_risk{tenant="bulk", tier="standard"}': "1 1 1 1",
        },
        at="3m",
        fires=[],
    ),
    Case(
        alert="BatchSLAMissed",
        story="a batch finished late",
        series={'imagegen_batches_sla_missed_total{tenant="acme", tier="priority"}': "0 0 1 1"},
        at="3m",
        fires=[{"tenant": "acme", "tier": "priority"}],
    ),
    Case(
        alert="BatchSLAMissed",
        story="every batch met its deadline",
        series={
            'imagegen_batches_sla_missed_total{tenant="acme", tier="priority"}': "0 0 0 0",
            'imagegen_batches_sla_met_total{tenant="acme", tier="priority"}': "0 1 2 3",
        },
        at="3m",
        fires=[],
    ),
    Case(
        alert="RegionUnreachable",
        story="a region's Redis has not answered for three minutes",
        series={'imagegen_region_reachable{region="eu-west", kind="redis"}': "1 0 0 0 0"},
        at="4m",
        fires=[{"region": "eu-west", "kind": "redis"}],
    ),
    Case(
        alert="RegionUnreachable",
        story="a region that blips answers again within the minute",
        series={'imagegen_region_reachable{region="eu-west", kind="redis"}': "1 0 1 0 1"},
        at="4m",
        fires=[],
    ),
    Case(
        alert="QueueBacklogGrowingAtMaxReplicas",
        story="the queue grows while the pool runs its maximum",
        series={
            'imagegen_queue_depth{tenant="acme", lane="normal", region="us-east"}': "0+10x30",
            'imagegen_pool_replicas{tenant="acme", region="us-east"}': "50x30",
            'imagegen_pool_max_replicas{tenant="acme", region="us-east"}': "50x30",
        },
        at="25m",
        fires=[{"tenant": "acme", "region": "us-east"}],
    ),
    Case(
        alert="QueueBacklogGrowingAtMaxReplicas",
        story="the queue grows but the HPA still has room",
        series={
            'imagegen_queue_depth{tenant="acme", lane="normal", region="us-east"}': "0+10x30",
            'imagegen_pool_replicas{tenant="acme", region="us-east"}': "20x30",
            'imagegen_pool_max_replicas{tenant="acme", region="us-east"}': "50x30",
        },
        at="25m",
        fires=[],
    ),
    Case(
        alert="TenantErrorRateHigh",
        story="one delivery in ten fails",
        series={
            DELIVERED: "0+90x30",
            FAILED: "0+10x30",
        },
        at="25m",
        fires=[{"tenant": "acme"}],
    ),
    Case(
        alert="TenantErrorRateHigh",
        story="one delivery in a hundred fails",
        series={
            DELIVERED: "0+99x30",
            FAILED: "0+1x30",
        },
        at="25m",
        fires=[],
    ),
    Case(
        alert="WebhookDeliveriesFailing",
        story="the tenant's receiver answers 500 to most deliveries",
        series={
            'imagegen_webhook_deliveries_total{tenant="acme", code="500"}': "0+10x40",
            'imagegen_webhook_deliveries_total{tenant="acme", code="200"}': "0+2x40",
        },
        at="35m",
        fires=[{"tenant": "acme"}],
    ),
    Case(
        alert="WebhookDeliveriesFailing",
        story="an occasional 500 among successes",
        series={
            'imagegen_webhook_deliveries_total{tenant="acme", code="500"}': "0+1x40",
            'imagegen_webhook_deliveries_total{tenant="acme", code="200"}': "0+10x40",
        },
        at="35m",
        fires=[],
    ),
    Case(
        alert="TenantRateLimitedSustained",
        story="a 429 every second for most of an hour",
        series={'imagegen_gateway_rate_limited_total{tenant="acme"}': "0+60x60"},
        at="50m",
        fires=[{"tenant": "acme"}],
    ),
    Case(
        alert="TenantRateLimitedSustained",
        story="a 429 every twenty seconds",
        series={'imagegen_gateway_rate_limited_total{tenant="acme"}': "0+3x60"},
        at="50m",
        fires=[],
    ),
    Case(
        alert="OperatorNotReconciling",
        story="the last Tenant pass succeeded at minute 10",
        series={
            'imagegen_reconcile_last_success_timestamp_seconds{kind="Tenant"}': "0+60x10 600x30"
        },
        at="30m",
        fires=[{}],
    ),
    Case(
        alert="OperatorNotReconciling",
        story="Tenant passes succeed every minute",
        series={'imagegen_reconcile_last_success_timestamp_seconds{kind="Tenant"}': "0+60x40"},
        at="30m",
        fires=[],
    ),
)


def expected(alert: alerts.Alert, output: dict[str, str]) -> dict[str, Any]:
    """The alert promtool should report for these output labels."""
    annotations = alert.rule()["annotations"]
    return {
        "exp_labels": {**output, "severity": alert.severity},
        "exp_annotations": {
            key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: output[m.group(1)], text)
            for key, text in annotations.items()
        },
    }


def test_file(*, rules: pathlib.Path) -> dict[str, Any]:
    """promtool's test file for CASES against the rules file at `rules`."""
    by_name = {alert.name: alert for alert in alerts.ALERTS}
    return {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": f"{case.alert}: {case.story}",
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": values} for series, values in case.series.items()
                ],
                "alert_rule_test": [
                    {
                        "eval_time": case.at,
                        "alertname": case.alert,
                        "exp_alerts": [expected(by_name[case.alert], out) for out in case.fires],
                    }
                ],
            }
            for case in CASES
        ],
    }
