"""The local stack the SLA benchmark runs on, with a region of limited capacity.

One management cluster and one regional cluster (real kube-scheduler, kwok nodes,
metrics-server, the real HPA controller), the region's Redis, the real operator under its
ServiceAccount, and the real gateway under its own with the management Redis.

The region is sized so that it fills up: its general nodes hold exactly the shared pool
at its maxReplicas, and a tainted node pool for the premium tenant holds fewer workers
than the premium pool's maxReplicas. A premium burst beyond its node pool can only be
placed by preempting shared workers, which the PriorityClasses of manifests/rbac/region.yaml
(the chart's, imagegen-premium above imagegen-standard) allow, never the reverse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from lightkube import codecs

from imagegen.kube import clients
from imagegen.localcluster import (
    addons,
    build,
    gateway,
    install,
    operatorsetup,
    process,
    redis,
    stack,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "us-east"
WORKERS = "imagegen-workers"
WORKER_MILLICORES = 500
"""Every worker pod's CPU request (the operator's default, set here so the node sizes
below follow from it)."""
NODE_POOL_LABEL = "imagegen.semantest.io/node-pool"
NODE_POOL = "premium"
TAINT = {"key": "imagegen.semantest.io/dedicated", "value": NODE_POOL, "effect": "NoSchedule"}
PREMIUM_PROFILE = "premium"
_CRDS = ("tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Capacity:
    """How many workers of WORKER_MILLICORES the region's nodes hold."""

    general_nodes: int
    workers_per_general_node: int
    premium_nodes: int
    workers_per_premium_node: int

    @property
    def general_workers(self) -> int:
        """Room on the untainted nodes: the shared pool's maxReplicas."""
        return self.general_nodes * self.workers_per_general_node

    @property
    def premium_node_pool_workers(self) -> int:
        """Room on the premium node pool."""
        return self.premium_nodes * self.workers_per_premium_node


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stack:
    """How the scenarios reach the running stack."""

    admin_kubeconfig: pathlib.Path
    region_kubeconfig: pathlib.Path
    region_redis_url: str
    gateway_url: str
    premium_nodes: frozenset[str]
    """Names of the nodes of the premium node pool."""
    workdir: pathlib.Path


@contextlib.contextmanager
def running(*, capacity: Capacity, premium_max: int) -> Iterator[Stack]:
    """The stack, started and ready; every process stopped and reaped on exit."""
    binaries = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-sla-") as scratch:
        workdir = pathlib.Path(scratch)
        options = dataclasses.replace(
            stack.SCALING_REGION,
            nodes=capacity.general_nodes,
            node_allocatable=_allocatable(capacity.workers_per_general_node),
        )
        clusters = stack.start(
            workdir=workdir, binaries=binaries, regions=(REGION,), region_options=options
        )
        children: list[process.ManagedProcess] = []
        try:
            region_redis = redis.start(workdir=workdir / "redis-region")
            children.append(region_redis.child)
            management_redis = redis.start(workdir=workdir / "redis-management")
            children.append(management_redis.child)
            premium_nodes = _install(clusters=clusters, capacity=capacity)
            setup = operatorsetup.prepare(
                local=clusters,
                rbac_dir=REPO / "manifests" / "rbac",
                redis_urls={REGION: region_redis.url},
                workdir=workdir / "operator",
                config_overrides=operator_config(capacity=capacity, premium_max=premium_max),
            )
            children.append(_start_operator(setup=setup, workdir=workdir))
            started = gateway.start(
                management=clusters.management,
                rbac=REPO / "manifests" / "rbac" / "gateway.yaml",
                redis_url=management_redis.url,
                workdir=workdir / "gateway",
            )
            children.append(started.child)
            yield Stack(
                admin_kubeconfig=clusters.management.kubeconfig,
                region_kubeconfig=clusters.regions[REGION].kubeconfig,
                region_redis_url=region_redis.url,
                gateway_url=started.url,
                premium_nodes=premium_nodes,
                workdir=workdir,
            )
        finally:
            for child in reversed(children):
                child.stop()
            clusters.stop()


def _allocatable(workers: int) -> dict[str, str]:
    # Memory and pods to spare: CPU alone decides how many workers fit.
    return {"cpu": f"{workers * WORKER_MILLICORES}m", "memory": "64Gi", "pods": "110"}


def _install(*, clusters: stack.LocalStack, capacity: Capacity) -> frozenset[str]:
    """The CRDs in the management cluster and the premium node pool in the region."""
    names = [f"premium-{index}" for index in range(capacity.premium_nodes)]
    with (
        clients.sync_client(kubeconfig=clusters.management.kubeconfig) as admin,
        clients.sync_client(kubeconfig=clusters.regions[REGION].kubeconfig) as region,
    ):
        install.apply_files(client=admin, paths=(REPO / "crds").glob("*.yaml"))
        install.wait_crds_established(client=admin, names=_CRDS)
        for name in names:
            node = addons.node_manifest(
                name,
                labels={NODE_POOL_LABEL: NODE_POOL},
                taints=[TAINT],
                allocatable=_allocatable(capacity.workers_per_premium_node),
            )
            region.create(codecs.from_dict(node))
    return frozenset(names)


def operator_config(*, capacity: Capacity, premium_max: int) -> dict[str, Any]:
    """The operator's configuration over prepare()'s regions.

    Every pool starts from the standard PriorityClass. The premium profile tolerates the
    node pool's taint and prefers its nodes, so the premium pool runs there while it fits
    and bursts onto the general nodes, preempting standard workers, when it does not.
    """
    if premium_max <= capacity.premium_node_pool_workers:
        raise ValueError(
            f"--premium-max {premium_max} fits the premium node pool"
            f" ({capacity.premium_node_pool_workers} workers): a burst would never preempt"
        )
    return {
        "driftCheckSeconds": 10,
        "workers": {
            "cpuRequest": f"{WORKER_MILLICORES}m",
            "profile": {"priorityClassName": "imagegen-standard"},
        },
        "sharedPool": {
            "pool": "shared",
            "minReplicas": 1,
            "maxReplicas": capacity.general_workers,
        },
        "autoscaling": {"scaleDownStabilizationSeconds": 30, "scaleDownPercentPerMinute": 100},
        "profiles": {
            PREMIUM_PROFILE: {
                "tolerations": [{**TAINT, "operator": "Equal"}],
                "affinity": {
                    "nodeAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100,
                                "preference": {
                                    "matchExpressions": [
                                        {
                                            "key": NODE_POOL_LABEL,
                                            "operator": "In",
                                            "values": [NODE_POOL],
                                        }
                                    ]
                                },
                            }
                        ]
                    }
                },
                "priorityClassName": "imagegen-premium",
            }
        },
    }


def _start_operator(
    *, setup: operatorsetup.OperatorSetup, workdir: pathlib.Path
) -> process.ManagedProcess:
    port = process.free_port()
    argv = [sys.executable, "-m", "imagegen", "operator", "--config", str(setup.config_path)]
    argv += ["--kubeconfig", str(setup.kubeconfig), "--metrics", "off"]
    argv += ["--liveness", f"http://127.0.0.1:{port}/healthz"]
    operator = process.spawn(name="operator", argv=argv, log_path=workdir / "operator.log")
    process.wait_for_port(process=operator, port=port, timeout_seconds=60)
    return operator
