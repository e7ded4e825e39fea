"""The Grafana dashboard, written once here and rendered by `files` to JSON.

Every query is filtered by the `tenant` and `region` variables (where the metric has the
label), so one tenant's view never shows another's series. Panels marked `core` are the
ones the Prometheus integration test requires to return series for every tenant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

UID = "imagegen-tenants"
TENANT = 'tenant=~"$tenant"'
REGION = 'region=~"$region"'
BOTH = f"{TENANT}, {REGION}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Panel:
    """One time-series panel."""

    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]
    """(legend, PromQL) of each series."""
    core: bool = False


PANELS: tuple[Panel, ...] = (
    Panel(
        title="Throughput (images/s)",
        unit="ops",
        core=True,
        queries=(
            (
                "{{tenant}} {{region}}",
                "sum by (tenant, region) (rate("
                f"imagegen_worker_images_generated_total{{{BOTH}}}[5m]))",
            ),
        ),
    ),
    Panel(
        title="Generation latency p95",
        unit="s",
        queries=(
            (
                "{{tenant}} {{provider}}",
                "histogram_quantile(0.95, sum by (tenant, provider, le) (rate("
                f"imagegen_worker_generation_duration_seconds_bucket{{{BOTH}}}[5m])))",
            ),
        ),
    ),
    Panel(
        title="Dispatch latency p95 (creation to queued)",
        unit="s",
        queries=(
            (
                "{{region}}",
                "histogram_quantile(0.95, sum by (region, le) (rate("
                f"imagegen_batch_dispatch_duration_seconds_bucket{{{REGION}}}[5m])))",
            ),
        ),
    ),
    Panel(
        title="SLA: batches met, missed (1h) and at risk",
        unit="short",
        core=True,
        queries=(
            (
                "met {{tenant}}",
                f"sum by (tenant) (increase(imagegen_batches_sla_met_total{{{TENANT}}}[1h]))",
            ),
            (
                "missed {{tenant}}",
                f"sum by (tenant) (increase(imagegen_batches_sla_missed_total{{{TENANT}}}[1h]))",
            ),
            ("at risk {{tenant}}", f"sum by (tenant) (imagegen_batches_at_risk{{{TENANT}}})"),
        ),
    ),
    Panel(
        title="Batches by phase",
        unit="short",
        queries=(
            ("{{tenant}} {{phase}}", f"sum by (tenant, phase) (imagegen_batches{{{TENANT}}})"),
        ),
    ),
    Panel(
        title="Queue depth",
        unit="short",
        core=True,
        queries=(
            (
                "{{tenant}} {{region}}",
                f"sum by (tenant, region) (imagegen_queue_depth{{{BOTH}}})",
            ),
        ),
    ),
    Panel(
        title="Oldest queued item",
        unit="s",
        queries=(
            (
                "{{tenant}} {{region}} {{lane}}",
                f"max by (tenant, region, lane) (imagegen_queue_oldest_item_age_seconds{{{BOTH}}})",
            ),
        ),
    ),
    Panel(
        title="Worker replicas vs HPA bounds",
        unit="short",
        core=True,
        queries=(
            (
                "current {{tenant}} {{region}}",
                f"max by (tenant, region) (imagegen_pool_replicas{{{BOTH}}})",
            ),
            (
                "desired {{tenant}} {{region}}",
                f"max by (tenant, region) (imagegen_pool_desired_replicas{{{BOTH}}})",
            ),
            (
                "min {{tenant}} {{region}}",
                f"max by (tenant, region) (imagegen_pool_min_replicas{{{BOTH}}})",
            ),
            (
                "max {{tenant}} {{region}}",
                f"max by (tenant, region) (imagegen_pool_max_replicas{{{BOTH}}})",
            ),
        ),
    ),
    Panel(
        title="Gateway requests",
        unit="reqps",
        queries=(
            (
                "{{tenant}} {{code}}",
                "sum by (tenant, code) (rate("
                f"imagegen_gateway_tenant_requests_total{{{TENANT}}}[5m]))",
            ),
            (
                "p95 s {{route}}",
                "histogram_quantile(0.95, sum by (route, le) (rate("
                "imagegen_gateway_request_duration_seconds_bucket[5m])))",
            ),
        ),
    ),
    Panel(
        title="Rate limiting",
        unit="short",
        queries=(
            (
                "429/s {{tenant}}",
                f"sum by (tenant) (rate(imagegen_gateway_rate_limited_total{{{TENANT}}}[5m]))",
            ),
            (
                "budget left {{tenant}}",
                f"min by (tenant) (imagegen_gateway_rate_limit_remaining{{{TENANT}}})",
            ),
        ),
    ),
    Panel(
        title="Webhooks",
        unit="short",
        queries=(
            (
                "{{tenant}} {{code}}",
                f"sum by (tenant, code) (rate(imagegen_webhook_deliveries_total{{{TENANT}}}[5m]))",
            ),
            (
                "given up {{tenant}}",
                f"sum by (tenant) (rate(imagegen_webhook_failures_total{{{TENANT}}}[5m]))",
            ),
            ("outbox", "sum(imagegen_webhook_outbox_depth)"),
        ),
    ),
    Panel(
        title="Errors",
        unit="short",
        queries=(
            (
                "{{tenant}} {{phase}}",
                "sum by (tenant, phase) (rate(imagegen_worker_deliveries_total{"
                f'{BOTH}, phase=~"failed|requeued|lost"}}[5m]))',
            ),
            (
                "{{tenant}} provider {{provider}}",
                "sum by (tenant, provider) (rate("
                f"imagegen_worker_provider_failures_total{{{BOTH}}}[5m]))",
            ),
            (
                "rejected {{tenant}} {{reason}}",
                "sum by (tenant, reason) (increase("
                f"imagegen_batches_rejected_total{{{TENANT}}}[1h]))",
            ),
            (
                "gateway {{tenant}} {{code}}",
                "sum by (tenant, code) (rate(imagegen_gateway_tenant_requests_total{"
                f'{TENANT}, code=~"5.."}}[5m]))',
            ),
            (
                "reconcile {{kind}} {{reason}}",
                "sum by (kind, reason) (rate(imagegen_reconcile_errors_total[5m]))",
            ),
            (
                "unreachable {{region}} {{kind}}",
                f"min by (region, kind) (imagegen_region_reachable{{{REGION}}}) == 0",
            ),
        ),
    ),
)


def render() -> dict[str, Any]:
    """The dashboard as Grafana imports it."""
    return {
        "uid": UID,
        "title": "imagegen: tenants and regions",
        "tags": ["imagegen"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [_datasource(), _variable("tenant"), _variable("region")]},
        "panels": [_panel(index, panel) for index, panel in enumerate(PANELS)],
    }


def _datasource() -> dict[str, Any]:
    return {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data"}


def _variable(label: str) -> dict[str, Any]:
    return {
        "name": label,
        "label": label,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": f"label_values(imagegen_pool_max_replicas, {label})", "refId": label},
        "definition": f"label_values(imagegen_pool_max_replicas, {label})",
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "refresh": 2,
        "current": {"text": "All", "value": "$__all"},
    }


def _panel(index: int, panel: Panel) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel.title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + number), "expr": expr, "legendFormat": legend}
            for number, (legend, expr) in enumerate(panel.queries)
        ],
    }
