"""A one-line view of a worker pool across regions, for the local stack's terminal: the
CPU its HPA reads, the replicas it runs and those it wants, within its bounds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import lightkube
from lightkube.resources import autoscaling_v2

from imagegen.kube import objects


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolState:
    """One pool's HPA in one region, as its status says."""

    region: str
    utilization: int | None
    """Average CPU utilization (%) the HPA last read; None while it has no metrics."""
    current: int
    desired: int
    min_replicas: int
    max_replicas: int


def read(client: lightkube.Client, *, region: str, name: str, namespace: str) -> PoolState | None:
    """The state of the HPA `name`, or None when the region has none (yet)."""
    with objects.not_found_ignored():
        return _state(
            client.get(autoscaling_v2.HorizontalPodAutoscaler, name, namespace=namespace),
            region=region,
        )
    return None


def _state(hpa: autoscaling_v2.HorizontalPodAutoscaler, *, region: str) -> PoolState | None:
    spec, status = hpa.spec, hpa.status
    if spec is None:
        return None
    return PoolState(
        region=region,
        utilization=cpu_utilization(hpa),
        current=(status.currentReplicas if status else None) or 0,
        desired=(status.desiredReplicas if status else None) or 0,
        min_replicas=spec.minReplicas or 1,
        max_replicas=spec.maxReplicas,
    )


def cpu_utilization(hpa: autoscaling_v2.HorizontalPodAutoscaler) -> int | None:
    """The average CPU utilization (%) an HPA last read, None while it has none."""
    for metric in (hpa.status.currentMetrics if hpa.status else None) or []:
        if metric.resource is not None and metric.resource.name == "cpu":
            return metric.resource.current.averageUtilization
    return None


def line(states: Sequence[PoolState]) -> str:
    """`us-east cpu 187% 3->9 [3..50] | eu-west cpu 2% 3 [3..50]`: an arrow only while
    the HPA wants another size than it runs."""
    return " | ".join(_one(state) for state in states)


def _one(state: PoolState) -> str:
    cpu = "  --" if state.utilization is None else f"{state.utilization:>3}%"
    replicas = (
        f"{state.current}"
        if state.current == state.desired
        else f"{state.current}->{state.desired}"
    )
    return f"{state.region} cpu {cpu} {replicas:>5} [{state.min_replicas}..{state.max_replicas}]"
