"""Driving a worker pool's CPU by hand and watching what the real HPA controller does.

The tests stand where the load model stands: they set kwok's usage-cpu annotation on
every pod of a pool (new pods included, as the HPA adds them) and nothing else. Above
that annotation everything is real: kwok reports the use, metrics-server scrapes it, the
HPA controller reads the metrics API and scales the Deployment.

No thread: lightkube's decoder has crashed when threads decoded at once, so the load is
re-applied on every poll of the test's own loop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import lightkube
from lightkube.resources import apps_v1, autoscaling_v2, core_v1

from imagegen.localcluster import addons, poolview
from tests.integration.tenantworld import WORKERS

CPU_REQUEST_MILLICORES = 500
"""The worker pods' CPU request (the operator config's default): 100 % of utilization."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sample:
    """What the pool looked like at one poll."""

    at: float
    """time.monotonic() of the poll."""
    replicas: int
    """The Deployment's spec.replicas: what the HPA last set."""
    desired: int | None
    """The HPA's status.desiredReplicas."""
    utilization: int | None
    """The average CPU utilization (%) the HPA last read from the metrics API."""
    conditions: dict[str, str]
    """The HPA's condition types -> status."""


@dataclasses.dataclass(kw_only=True)
class PoolLoad:
    """One tenant's worker pool in one region, held at a chosen CPU utilization."""

    client: lightkube.Client
    name: str
    """The pool's Deployment and HPA name, worker-<tenant>."""
    utilization_percent: int = 0
    history: list[Sample] = dataclasses.field(default_factory=list)

    def set_utilization(self, percent: int) -> None:
        """From the next poll on, every pod reports this share of its CPU request."""
        self.utilization_percent = percent

    def tick(self) -> Sample:
        """Apply the load to every live pod of the pool, then record one sample."""
        millicores = CPU_REQUEST_MILLICORES * self.utilization_percent // 100
        value = f"{millicores}m"
        for pod in self._pods():
            annotations = (pod.metadata.annotations if pod.metadata else None) or {}
            if annotations.get(addons.USAGE_CPU_ANNOTATION) != value:
                self.client.patch(
                    core_v1.Pod,
                    pod.metadata.name,  # type: ignore[union-attr,arg-type]
                    {"metadata": {"annotations": {addons.USAGE_CPU_ANNOTATION: value}}},
                    namespace=WORKERS,
                )
        sample = self._sample()
        self.history.append(sample)
        return sample

    def run_until(self, reached: Callable[[Sample], bool], *, timeout: float, what: str) -> Sample:
        """Keep the load on until a sample satisfies `reached`; fail with the HPA's story."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sample = self.tick()
            if reached(sample):
                return sample
            time.sleep(1)
        raise AssertionError(f"{what} not reached within {timeout}s\n{self.story()}")

    def hold(self, seconds: float) -> list[Sample]:
        """Keep the load on for `seconds`; return the samples taken meanwhile."""
        start = len(self.history)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.tick()
            time.sleep(1)
        return self.history[start:]

    def replicas_seen(self) -> set[int]:
        """Every spec.replicas the Deployment had at a poll."""
        return {sample.replicas for sample in self.history}

    def story(self) -> str:
        """The HPA's spec bounds, status, conditions and events, and the recent samples:
        what the controller saw and why it did (not) act."""
        hpa = self.client.get(autoscaling_v2.HorizontalPodAutoscaler, self.name, namespace=WORKERS)
        lines = [
            f"HPA spec min/max: {hpa.spec.minReplicas}/{hpa.spec.maxReplicas}"  # type: ignore[union-attr]
            f" status: {hpa.status.to_dict() if hpa.status else None}"
        ]
        events = self.client.list(
            core_v1.Event, namespace=WORKERS, fields={"involvedObject.name": self.name}
        )
        lines += [f"event {event.type} {event.reason}: {event.message}" for event in events]
        lines += [f"sample {sample}" for sample in self.history[-10:]]
        return "\n".join(lines)

    def _pods(self) -> list[core_v1.Pod]:
        deployment = self.client.get(apps_v1.Deployment, self.name, namespace=WORKERS)
        selector: dict[str, Any] = dict(deployment.spec.selector.matchLabels or {})  # type: ignore[union-attr]
        return [
            pod
            for pod in self.client.list(core_v1.Pod, namespace=WORKERS, labels=selector)
            if pod.metadata is not None and pod.metadata.deletionTimestamp is None
        ]

    def _sample(self) -> Sample:
        deployment = self.client.get(apps_v1.Deployment, self.name, namespace=WORKERS)
        hpa = self.client.get(autoscaling_v2.HorizontalPodAutoscaler, self.name, namespace=WORKERS)
        status = hpa.status
        return Sample(
            at=time.monotonic(),
            replicas=deployment.spec.replicas or 0,  # type: ignore[union-attr]
            desired=status.desiredReplicas if status else None,
            utilization=poolview.cpu_utilization(hpa),
            conditions={c.type: c.status for c in (status.conditions if status else None) or []},
        )
