"""The Tenant's `Autoscaling` condition: what its HPAs say, summed up across regions.

Read from the HPAs' own conditions, never guessed: an HPA that cannot read metrics says
ScalingActive=False (FailedGetResourceMetric and kin), one pinned at a bound says
ScalingLimited=True. Metrics missing anywhere outrank a limit, which outranks all well.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from imagegen.api import meta, tenant


@dataclasses.dataclass(frozen=True, kw_only=True)
class Summary:
    """The condition's status, reason and message."""

    status: meta.ConditionStatus
    reason: str
    message: str


def summarize(region_statuses: Sequence[tenant.RegionStatus]) -> Summary:
    """The Autoscaling condition for the regions' last reported HPA state."""
    reported = [r for r in region_statuses if r.conditions]
    if not reported:
        return Summary(
            status="Unknown", reason="NotReported", message="no autoscaler has reported yet"
        )
    blind = [r for r in reported if _is(r, "ScalingActive", "False")]
    if blind:
        return Summary(
            status="False",
            reason="MetricsUnavailable",
            message="; ".join(f"{r.name}: {_message(r, 'ScalingActive')}" for r in blind),
        )
    limited = [r for r in reported if _is(r, "ScalingLimited", "True")]
    replicas = ", ".join(
        f"{r.name} {r.hpa_current_replicas or 0}->{r.hpa_desired_replicas or 0}" for r in reported
    )
    if limited:
        return Summary(
            status="True",
            reason="ScalingLimited",
            message="; ".join(f"{r.name}: {_message(r, 'ScalingLimited')}" for r in limited)
            + f" (replicas {replicas})",
        )
    return Summary(status="True", reason="ScalingActive", message=f"replicas {replicas}")


def _is(region: tenant.RegionStatus, kind: str, status: str) -> bool:
    return any(c.type == kind and c.status == status for c in region.conditions or ())


def _message(region: tenant.RegionStatus, kind: str) -> str:
    found = next((c for c in region.conditions or () if c.type == kind), None)
    return (found.message or found.reason or kind) if found else kind
