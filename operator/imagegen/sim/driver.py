"""SIMULATION: the loop that writes the load model onto the pods of a region.

Every `interval` it reads each pool's queued and in-flight items from the region's
Redis, lists the pool's pods (they come and go as the HPA scales), and sets on each the
`kwok.x-k8s.io/usage-cpu` annotation that kwok reports to the metrics API. A pod whose
annotation already says the right value is not patched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import lightkube
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import redisconn
from imagegen.kube import objects
from imagegen.queue import core
from imagegen.sim import load

logger = logging.getLogger(__name__)

USAGE_ANNOTATION = "kwok.x-k8s.io/usage-cpu"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolTarget:
    """One worker pool: its queue, and how to find its pods."""

    pool: str
    """Queue pool name (`shared` or `dedicated-<tenant>`)."""
    namespace: str
    selector: Mapping[str, str]
    """Labels of the pool's pods (the Deployment's selector)."""
    shape: load.PodShape = dataclasses.field(default_factory=load.PodShape)


async def drive_once(
    *,
    kube: lightkube.AsyncClient,
    redis: redisconn.Client,
    targets: Sequence[PoolTarget],
    noise: float = 0.0,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Annotate every pod of every pool once; return the millicores set per pool."""
    applied: dict[str, int] = {}
    for target in targets:
        queue = core.Queue(redis=redis, pool=target.pool)
        queued = sum(lane.queued for lane in (await queue.depth()).values())
        in_flight = await queue.in_flight()
        selector: dict[str, Any] = dict(target.selector)
        pods = [
            pod
            async for pod in kube.list(core_v1.Pod, namespace=target.namespace, labels=selector)
            if pod.metadata is not None and pod.metadata.deletionTimestamp is None
        ]
        usage = load.pod_cpu_millicores(
            queued=queued, in_flight=in_flight, replicas=len(pods), shape=target.shape,
            noise=noise, rng=rng,
        )  # fmt: skip
        for pod in pods:
            await _annotate(kube=kube, pod=pod, value=load.annotation_value(usage))
        applied[target.pool] = usage
    return applied


async def drive_forever(
    *,
    kube: lightkube.AsyncClient,
    redis: redisconn.Client,
    targets: Sequence[PoolTarget],
    interval: float = 2.0,
    noise: float = 0.0,
    seed: int = 0,
) -> None:
    """drive_once every interval until cancelled; a failed round is logged and retried."""
    rng = random.Random(seed)
    while True:
        try:
            await drive_once(kube=kube, redis=redis, targets=targets, noise=noise, rng=rng)
        except (lightkube.ApiError, OSError) as error:
            logger.warning("load model: round failed: %s", error)
        await asyncio.sleep(interval)


async def _annotate(*, kube: lightkube.AsyncClient, pod: core_v1.Pod, value: str) -> None:
    assert pod.metadata is not None
    assert pod.metadata.name is not None
    if (pod.metadata.annotations or {}).get(USAGE_ANNOTATION) == value:
        return
    # A pod the HPA just removed is gone before its patch: that is the normal case.
    with objects.not_found_ignored():
        await kube.patch(
            core_v1.Pod,
            pod.metadata.name,
            {"metadata": {"annotations": {USAGE_ANNOTATION: value}}},
            namespace=pod.metadata.namespace,
            patch_type=PatchType.MERGE,
        )
