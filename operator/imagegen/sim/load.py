"""The formula: from a pool's work to each of its pods' CPU. Pure; the clock and the
random source come from the caller.

A pool of `replicas` pods with `slots` concurrent items each can hold `replicas * slots`
items at once. Its demand is the items in flight plus those queued (a backlog means the
pool would use more if it had it). Each pod's CPU is its request times the pool's
utilization, demand / capacity, capped at what the limit allows, plus an idle floor:

    usage = idle + request * min(demand / (replicas * slots), limit / request)

then multiplied by (1 + noise), noise drawn from a normal law with the given spread.
The HPA reads usage / request: a full pool reads 100 %, a backlog reads up to
limit / request (200 % for 500m/1), an empty one reads idle / request.
"""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodShape:
    """What one worker pod may use, from the worker Deployment."""

    request_millicores: int = 500
    limit_millicores: int = 1000
    slots: int = 4
    """Items one worker generates at once (its concurrency)."""
    idle_millicores: int = 10
    """What a worker uses doing nothing: its probes and its lease polling."""


def pod_cpu_millicores(
    *,
    queued: int,
    in_flight: int,
    replicas: int,
    shape: PodShape,
    noise: float = 0.0,
    rng: random.Random | None = None,
) -> int:
    """The CPU each of the pool's pods reports, in millicores (>= 0). With noise, pass a
    seeded rng so that a run can be repeated."""
    if replicas <= 0:
        return 0
    capacity = replicas * shape.slots
    ceiling = shape.limit_millicores / shape.request_millicores
    utilization = min((queued + in_flight) / capacity, ceiling)
    usage = shape.idle_millicores + shape.request_millicores * utilization
    if noise:
        usage *= 1.0 + (rng or random.Random()).gauss(0.0, noise)
    return max(0, round(usage))


def annotation_value(millicores: int) -> str:
    """kwok's usage-cpu annotation, as a Kubernetes quantity."""
    return f"{millicores}m"
