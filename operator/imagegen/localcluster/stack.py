"""One management cluster and one cluster per region, started together."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import pathlib
from collections.abc import Mapping, Sequence

from imagegen.localcluster import cluster

MANAGEMENT = "management"
DEFAULT_REGIONS = ("us-east", "eu-west", "asia-pacific")

HPA_SYNC_SECONDS = 5
"""The local stack's HPA sync period: 5 s instead of the 15 s default (local stacks and
tests only), so that scaling shows within seconds."""
SCALING_REGION = cluster.ClusterOptions(
    scheduler=True,
    nodes=2,
    metrics=True,
    controller_manager_flags=[f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_SECONDS}s"],
)
"""A region whose worker pods run on simulated nodes and are measured by the metrics API,
so the real HPA controller scales its pools."""


@dataclasses.dataclass(kw_only=True)
class LocalStack:
    """The running clusters of the local stack, by name."""

    management: cluster.LocalCluster
    regions: dict[str, cluster.LocalCluster]

    def all_clusters(self) -> list[cluster.LocalCluster]:
        """The management cluster first, then the regions in order."""
        return [self.management, *self.regions.values()]

    def stop(self) -> None:
        """Stop every cluster, all at once: each waits about a second on its apiserver and
        its metrics-server to exit, which adds up when they stop one after the other."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.regions) + 1) as pool:
            for future in [pool.submit(running.stop) for running in self.all_clusters()]:
                future.result()


def start(
    *,
    workdir: pathlib.Path,
    binaries: Mapping[str, pathlib.Path],
    regions: Sequence[str] = DEFAULT_REGIONS,
    management_options: cluster.ClusterOptions | None = None,
    region_options: cluster.ClusterOptions | None = None,
) -> LocalStack:
    """Start every cluster at once and wait until all are ready, or stop them all."""
    launched: list[cluster.LocalCluster] = []
    try:
        for name, options in [
            (MANAGEMENT, management_options),
            *((region, region_options) for region in regions),
        ]:
            launched.append(
                cluster.launch(
                    name=name, workdir=workdir / name, binaries=binaries, options=options
                )
            )
        # Readiness is waiting on HTTP, so threads overlap it across clusters.
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(launched)) as pool:
            for future in [pool.submit(started.wait_ready) for started in launched]:
                future.result()
    except BaseException:
        for started in launched:
            started.stop()
        raise
    return LocalStack(management=launched[0], regions={c.name: c for c in launched[1:]})
