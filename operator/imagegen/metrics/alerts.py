"""The alert rules, written once here and rendered by `files` to a PrometheusRule and a
plain Prometheus rules file. Thresholds are named so the runbooks can quote them.

Each alert names its runbook: a section of docs/operations.md with the alert's name as
its heading (what it means, what to check, what to do).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Severity = Literal["page", "ticket", "info"]

GROUP = "imagegen"
RUNBOOKS = "https://github.com/semantest/imagegen/blob/main/docs/operations.md"
"""Absolute: an alert reaches people through Alertmanager, Slack or a pager, where a path
relative to a repository means nothing. The repository is the chart's `home`."""
ERROR_RATIO = 0.05
"""Share of a tenant's deliveries that fail or are retried, above which it is alerted."""
WEBHOOK_FAILURE_RATIO = 0.5
"""Share of a tenant's webhook attempts answered with other than 2xx."""
RATE_LIMITED_PER_SECOND = 0.1
"""Sustained 429s a second for a tenant: a signal to raise its rate limit."""
RECONCILE_STALE_SECONDS = 600
"""No Tenant handler pass succeeded for this long: ten default drift intervals."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Alert:
    """One alerting rule."""

    name: str
    expr: str
    duration: str
    """Prometheus `for:` (how long the condition must hold)."""
    severity: Severity
    summary: str
    """One line; templates use {{ $labels.x }} only, so tests can predict the text."""
    description: str

    def rule(self) -> dict[str, Any]:
        """The rule as Prometheus reads it."""
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOKS}#{self.name.lower()}",
            },
        }


ALERTS: tuple[Alert, ...] = (
    Alert(
        name="PremiumBatchAtRisk",
        expr='sum by (tenant) (imagegen_batches_at_risk{tier="priority"}) > 0',
        duration="0s",
        severity="page",
        summary="{{ $labels.tenant }}: a priority batch is due within a minute, unfinished",
        description="A priority-tier batch is unfinished less than 60 s before its SLA deadline.",
    ),
    Alert(
        name="BatchSLAMissed",
        expr="sum by (tenant, tier) (increase(imagegen_batches_sla_missed_total[10m])) > 0",
        duration="0s",
        severity="ticket",
        summary="{{ $labels.tenant }}: a batch finished after its SLA deadline",
        description="At least one batch of the tenant completed after status.deadline in"
        " the last 10 minutes.",
    ),
    Alert(
        name="RegionUnreachable",
        expr="min by (region, kind) (imagegen_region_reachable) == 0",
        duration="2m",
        severity="page",
        summary="Region {{ $labels.region }} does not answer ({{ $labels.kind }})",
        description="The operator cannot reach the region's Kubernetes API or Redis; its"
        " batches fail over after failoverAfterSeconds.",
    ),
    Alert(
        name="QueueBacklogGrowingAtMaxReplicas",
        expr="sum by (tenant, region) (delta(imagegen_queue_depth[10m])) > 0"
        " and on (tenant, region)"
        " (imagegen_pool_replicas - imagegen_pool_max_replicas) >= 0",
        duration="10m",
        severity="page",
        summary="{{ $labels.tenant }} in {{ $labels.region }}: backlog grows at max replicas",
        description="The tenant's queue keeps growing while its pool already runs"
        " spec.workers.maxReplicas workers: the HPA cannot add more.",
    ),
    Alert(
        name="PremiumPoolShortOfCapacity",
        expr='max by (tenant, region) (imagegen_pool_workers_unschedulable{tier="priority"}) > 0',
        duration="5m",
        severity="page",
        summary="{{ $labels.tenant }} in {{ $labels.region }}: workers cannot be scheduled",
        description="The region's scheduler has not been able to place some of the priority"
        " tenant's workers for 5 minutes: its pool cannot reach the replicas it wants"
        " (the Tenant's Capacity condition has the scheduler's message).",
    ),
    Alert(
        name="TenantErrorRateHigh",
        expr='sum by (tenant) (rate(imagegen_worker_deliveries_total{phase=~"failed|requeued"}'
        "[10m])) / sum by (tenant) (rate(imagegen_worker_deliveries_total[10m]))"
        f" > {ERROR_RATIO}",
        duration="10m",
        severity="ticket",
        summary=f"{{{{ $labels.tenant }}}}: more than {ERROR_RATIO:.0%} of items fail",
        description=f"More than {ERROR_RATIO:.0%} of the tenant's deliveries failed or were"
        " retried over 10 minutes.",
    ),
    Alert(
        name="WebhookDeliveriesFailing",
        expr='sum by (tenant) (rate(imagegen_webhook_deliveries_total{code!~"2.."}[15m]))'
        " / sum by (tenant) (rate(imagegen_webhook_deliveries_total[15m]))"
        f" > {WEBHOOK_FAILURE_RATIO}",
        duration="15m",
        severity="ticket",
        summary="{{ $labels.tenant }}: most webhook deliveries fail",
        description=f"More than {WEBHOOK_FAILURE_RATIO:.0%} of the tenant's webhook attempts"
        " got no 2xx answer over 15 minutes.",
    ),
    Alert(
        name="TenantRateLimitedSustained",
        expr="sum by (tenant) (rate(imagegen_gateway_rate_limited_total[10m]))"
        f" > {RATE_LIMITED_PER_SECOND}",
        duration="30m",
        severity="info",
        summary="{{ $labels.tenant }} is rate limited for half an hour",
        description="The gateway has refused the tenant's requests with 429 for 30 minutes:"
        " consider raising spec.rateLimit.",
    ),
    Alert(
        name="OperatorNotReconciling",
        # max_over_time keeps the last success visible for an hour after the operator
        # stops exporting it, so an operator that died still fires.
        expr="time() - max(max_over_time("
        'imagegen_reconcile_last_success_timestamp_seconds{kind="Tenant"}[1h]))'
        f" > {RECONCILE_STALE_SECONDS}",
        duration="5m",
        severity="page",
        summary="The operator has not reconciled a Tenant for 10 minutes",
        description="No Tenant handler pass succeeded in 10 minutes, though drift checks run"
        " every driftCheckSeconds for every Tenant.",
    ),
)


def groups() -> list[dict[str, Any]]:
    """The rule groups, as the `groups:` of a rules file or a PrometheusRule spec."""
    return [{"name": GROUP, "rules": [alert.rule() for alert in ALERTS]}]
