"""SIMULATION, said so: the worker pods are kwok pods, which run nothing. The images are
made by local `imagegen worker` processes (the local provider, a fixed cost per image)
against the region's Redis, one per Running pod of each pool.

The pods come from a watch of the workers namespace (a reflector), so a pod that turns
Running, or is preempted or scaled away, changes the count at once; every FOLLOW_SECONDS
the followers start or stop processes to match it. A process counts as a slot from its
start; `imagegen worker` then takes about a second or two on this machine (Python start,
Redis connection) before it leases its first item, as a container would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import sys
import uuid
from collections.abc import Mapping
from typing import Any

from lightkube.resources import core_v1

from imagegen.localcluster import process
from imagegen.render import labels
from slabench import figures, stack

FOLLOW_SECONDS = 0.5


class PodBook:
    """The workers namespace's pods as the apiserver says now (a reflector's sink)."""

    def __init__(self) -> None:
        self._pods: dict[str, core_v1.Pod] = {}

    def replace(self, objects: list[Any]) -> None:
        """Everything that exists now."""
        self._pods = {pod.metadata.name: pod for pod in objects}

    def apply(self, event: str, obj: Any) -> None:
        """One watch event."""
        if event == "DELETED":
            self._pods.pop(obj.metadata.name, None)
        else:
            self._pods[obj.metadata.name] = obj

    def count(self, selector: Mapping[str, str], *, node_pool: frozenset[str]) -> PodCounts:
        """The pods with these labels, those being deleted left out."""
        running = pending = outside = 0
        for pod in self._pods.values():
            meta, spec, status = pod.metadata, pod.spec, pod.status
            if meta is None or meta.deletionTimestamp is not None:
                continue
            if any((meta.labels or {}).get(key) != value for key, value in selector.items()):
                continue
            phase = status.phase if status else None
            if phase == "Running":
                running += 1
                if spec is not None and spec.nodeName not in node_pool:
                    outside += 1
            elif phase == "Pending":
                pending += 1
        return PodCounts(running=running, pending=pending, outside_node_pool=outside)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodCounts:
    """A pool's pods at one moment."""

    running: int
    pending: int
    outside_node_pool: int
    """Running pods on nodes other than the given node pool's."""


def selectors(*, premium: str | None) -> dict[str, dict[str, str]]:
    """The pod labels of each pool the followers serve: the shared pool, and the premium
    tenant's dedicated pool when it has one."""
    found = {figures.SHARED: {labels.POOL: "shared"}}
    if premium is not None:
        found[premium] = {labels.TENANT: premium}
    return found


class Followers:
    """One local worker process per Running pod of each pool."""

    def __init__(
        self,
        *,
        book: PodBook,
        pools: dict[str, dict[str, str]],
        redis_url: str,
        workdir: pathlib.Path,
        concurrency: int,
        image_seconds: float,
    ) -> None:
        self._book = book
        self._pools = pools
        self._redis_url = redis_url
        self._workdir = workdir
        self._concurrency = concurrency
        self._image_seconds = image_seconds
        self._workers: dict[str, list[process.ManagedProcess]] = {name: [] for name in pools}
        self._stopping: set[asyncio.Task[None]] = set()

    def count(self, pool: str) -> int:
        """Worker processes serving the pool now."""
        return len(self._workers.get(pool, []))

    async def run(self) -> None:
        """Follow the pods until cancelled."""
        while True:
            for name, selector in self._pools.items():
                running = self._book.count(selector, node_pool=frozenset()).running
                workers = self._workers[name]
                while len(workers) < running:
                    workers.append(self._spawn(name))
                while len(workers) > running:
                    self._stop(workers.pop())
            await asyncio.sleep(FOLLOW_SECONDS)

    async def stop_all(self) -> None:
        """Stop every worker process and wait until all are reaped."""
        for workers in self._workers.values():
            while workers:
                self._stop(workers.pop())
        await asyncio.gather(*self._stopping)

    def _stop(self, worker: process.ManagedProcess) -> None:
        # SIGTERM, then the worker's grace: in a thread, so the others keep being followed.
        task = asyncio.create_task(asyncio.to_thread(worker.stop))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _spawn(self, pool: str) -> process.ManagedProcess:
        flags = ["--pool", "shared"] if pool == figures.SHARED else ["--tenant", pool]
        argv = [sys.executable, "-m", "imagegen", "worker", "--region", stack.REGION, *flags]
        argv += ["--redis-url", self._redis_url, "--concurrency", str(self._concurrency)]
        argv += ["--storage-dir", str(self._workdir / "images")]
        argv += ["--port", str(process.free_port())]
        argv += ["--simulated-cost-seconds", str(self._image_seconds)]
        tag = uuid.uuid4().hex[:6]
        log = self._workdir / "workers" / f"{pool}-{tag}.log"
        return process.spawn(name=f"worker-{pool}-{tag}", argv=argv, log_path=log)
