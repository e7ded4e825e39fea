"""Benchmark: what a Tenant's CPU band buys over the HPA's default 10 % tolerance.

One regional cluster of the local stack (kube-controller-manager's real HPA controller,
metrics-server, kwok nodes) runs two worker pools side by side, rendered by the operator
from two Tenants that differ in nothing but the band:

- `band`:  the Tenant's thresholds (target 70 %, up above 80 %, down below 30 %), which
  the operator writes as the HPA's scale-up and scale-down tolerances (143m, 571m);
- `plain`: the same HPA without tolerances, so the controller's default 10 % applies.

Both get the same offered load, in CPU cores, spread over however many pods each pool runs
at that moment (a closed loop: more pods, less CPU each), through kwok's usage-cpu
annotation, capped at the pods' CPU limit. The load is, in steps of 5 s:

  walk   a seeded random walk around 70 % of 6 pods' request (mean-reverting, sd 8 points)
  burst  100 % of 50 pods' request: more than the largest pool can serve
  fall   20 % of 6 pods' request
  walk   the random walk again

It writes bench/results/autoscale.json (per pool: replica changes, time from burst start
to the first scale-up and to maxReplicas, the least time the scale-up policy allows,
overshoot, time with the HPA's reading below and above the band, replicas seen) and
bench/results/autoscale.png, and prints the figures and the band/plain ratio.

    make bench-autoscale        # about 17 minutes, one cluster start included
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import pathlib
import random
import sys
import tempfile
import time
from typing import Any

import lightkube
from lightkube import codecs
from lightkube.resources import apps_v1, autoscaling_v2, core_v1

from imagegen.api import operatorconfig, tenant
from imagegen.kube import clients, objects
from imagegen.localcluster import addons, build, cluster, poolview, stack
from imagegen.render import pool as render_pool

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
REGION = "us-east"
WORKERS = "imagegen-workers"
REQUEST_MILLICORES = 500
LIMIT_MILLICORES = 4000
"""Burstable workers (limit 4 cores over a 500m request), so that a burst reads up to
800 % and the scale-up policy, not a capped signal, sets the pace: at a 1-core limit the
HPA reads at most 200 %, and new pods count as idle until metrics-server has measured
them, which damps every step."""
MIN_REPLICAS, MAX_REPLICAS = 3, 50
TARGET, UP, DOWN = 70, 80, 30
REFERENCE_PODS = 6
"""The walk and the fall are shares of this many pods' request."""
STEP_SECONDS = 5
SCALE_DOWN_WINDOW_SECONDS = 30
"""The Tenants' scale-down stabilisation (production default: 300 s), so a run is short."""
PHASES: tuple[tuple[str, int], ...] = (("walk", 360), ("burst", 120), ("fall", 90), ("walk", 360))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sample:
    at: float
    """Seconds since the load started."""
    phase: str
    demand_millicores: int
    replicas: int
    desired: int | None
    utilization: int | None
    last_scale_at: float | None
    """The HPA's status.lastScaleTime, in seconds since the load started: exact to the
    second, where the polls (one pool after the other, 50 pods each) lag."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    binaries = build.ensure_built()
    schedule = load_schedule(seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-autoscale-") as scratch:
        region = cluster.start(
            name=REGION,
            workdir=pathlib.Path(scratch) / REGION,
            binaries=binaries,
            options=stack.SCALING_REGION,
        )
        try:
            with clients.sync_client(kubeconfig=region.kubeconfig) as client:
                pools = {"band": _install(client, name="band", band=True),
                         "plain": _install(client, name="plain", band=False)}  # fmt: skip
                _wait_for_metrics(client, pools)
                history = _drive(client, pools=pools, schedule=schedule)
        finally:
            region.stop()
    report = {
        "seed": args.seed,
        "phases": [{"name": name, "seconds": seconds} for name, seconds in PHASES],
        "hpa_sync_seconds": stack.HPA_SYNC_SECONDS,
        "scale_down_stabilization_seconds": SCALE_DOWN_WINDOW_SECONDS,
        "scale_up_policy": {
            "select": "Max",
            "percent_per_15_seconds": 100,
            "pods_per_15_seconds": operatorconfig.Autoscaling().scale_up_pods_per_15_seconds,
        },
        "pod_cpu_request_millicores": REQUEST_MILLICORES,
        "pod_cpu_limit_millicores": LIMIT_MILLICORES,
        "pools": {name: summarize(samples) for name, samples in history.items()},
    }
    report["targets"] = _targets(report["pools"])
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "autoscale.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(history, path=args.results / "autoscale.png")
    _print(report)
    if not all(report["targets"].values()):
        sys.exit(1)


def load_schedule(*, seed: int) -> list[tuple[str, int]]:
    """(phase, offered millicores) for every STEP_SECONDS of the run."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable load, not a secret
    level = float(TARGET)
    steps: list[tuple[str, int]] = []
    for phase, seconds in PHASES:
        for _ in range(seconds // STEP_SECONDS):
            if phase == "walk":
                # Mean-reverting: the level wanders around the target, not off to a bound.
                level = TARGET + 0.8 * (level - TARGET) + rng.gauss(0.0, 8.0)
                share, pods = max(10.0, level), REFERENCE_PODS
            elif phase == "burst":
                share, pods = 100.0, MAX_REPLICAS
            else:
                share, pods = 20.0, REFERENCE_PODS
            steps.append((phase, round(share / 100 * REQUEST_MILLICORES * pods)))
    return steps


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """The figures of one pool over the run."""
    replicas = [sample.replicas for sample in samples]
    changes = sum(1 for before, after in itertools.pairwise(replicas) if after != before)
    burst = [sample for sample in samples if sample.phase == "burst"]
    start = burst[0].at
    at_start = burst[0].replicas
    first_up = next((_scaled_at(s) - start for s in burst if s.replicas > at_start), None)
    at_max = next((_scaled_at(s) - start for s in burst if s.replicas == MAX_REPLICAS), None)
    minimum = policy_minimum_seconds(start_replicas=at_start)
    needed = max(_needed(sample.demand_millicores) for sample in samples)
    readings = [s for s in samples if s.utilization is not None]
    return {
        "replica_changes": changes,
        "walk_replica_changes": sum(
            1
            for before, after in itertools.pairwise(samples)
            if after.phase == before.phase == "walk" and after.replicas != before.replicas
        ),
        "burst_start_replicas": at_start,
        "seconds_burst_to_first_scale_up": first_up,
        "seconds_burst_to_max": at_max,
        "seconds_first_scale_up_to_max": (
            None if at_max is None or first_up is None else at_max - first_up
        ),
        "policy_minimum_seconds_to_max": minimum,
        "overshoot_replicas": max(0, max(replicas) - needed),
        "seconds_reading_below_band": sum(1 for s in readings if (s.utilization or 0) < DOWN),
        "seconds_reading_above_band": sum(1 for s in readings if (s.utilization or 0) > UP),
        "min_replicas_seen": min(replicas),
        "max_replicas_seen": max(replicas),
    }


def _scaled_at(sample: Sample) -> float:
    return sample.at if sample.last_scale_at is None else sample.last_scale_at


def policy_minimum_seconds(*, start_replicas: int) -> int:
    """The least time from the first scale-up to MAX_REPLICAS that the scale-up policy
    allows: per 15 s period, the larger of doubling and +8 pods (the operator's default
    `scaleUpPodsPer15Seconds`). The HPA controller counts a scale-up in the period until
    15 s after it was recorded, a moment after its sync began, so the next step comes at
    the first sync after that: every 20 s with the 5 s sync, not 15."""
    pods = operatorconfig.Autoscaling().scale_up_pods_per_15_seconds
    replicas, periods = start_replicas, 0
    while replicas < MAX_REPLICAS:
        replicas = min(MAX_REPLICAS, max(replicas * 2, replicas + pods))
        periods += 1
    sync = stack.HPA_SYNC_SECONDS
    return max(0, periods - 1) * (15 // sync + 1) * sync


def _needed(demand_millicores: int) -> int:
    """Replicas that would hold the load at the target, within the pool's bounds."""
    wanted = math.ceil(demand_millicores / (REQUEST_MILLICORES * TARGET / 100))
    return min(MAX_REPLICAS, max(MIN_REPLICAS, wanted))


def _targets(pools: dict[str, dict[str, Any]]) -> dict[str, bool]:
    band, plain = pools["band"], pools["plain"]
    to_max = band["seconds_first_scale_up_to_max"]
    return {
        "band_changes_at_most_half_as_often": band["replica_changes"] * 2
        <= plain["replica_changes"],
        "band_reaches_max_within_one_sync_of_policy_minimum": to_max is not None
        and to_max <= band["policy_minimum_seconds_to_max"] + stack.HPA_SYNC_SECONDS,
        "band_stays_within_3_to_50": band["min_replicas_seen"] >= MIN_REPLICAS
        and band["max_replicas_seen"] <= MAX_REPLICAS,
    }


def _install(client: lightkube.Client, *, name: str, band: bool) -> str:
    """Apply the pool the operator renders for a Tenant `name`; without `band`, drop the
    tolerances so the HPA controller's default applies. Returns the pool's name."""
    config = operatorconfig.local_default().model_copy(
        update={
            "autoscaling": operatorconfig.Autoscaling(scale_down_percent_per_minute=100),
            "workers": operatorconfig.WorkerPods(cpu_limit=f"{LIMIT_MILLICORES}m"),
        }
    )
    model = tenant.Tenant.model_validate(
        {
            "apiVersion": "imagegen.semantest.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name, "uid": f"bench-{name}"},
            "spec": {
                "tier": "priority",
                "namespace": f"tenant-{name}",
                "regions": [REGION],
                "workers": {
                    "minReplicas": MIN_REPLICAS,
                    "maxReplicas": MAX_REPLICAS,
                    "targetCPUUtilizationPercentage": TARGET,
                    "scaleUpThresholdPercent": UP,
                    "scaleDownThresholdPercent": DOWN,
                    "scaleDownStabilizationSeconds": SCALE_DOWN_WINDOW_SECONDS,
                },
            },
        }
    )
    for manifest in render_pool.tenant_pool(tenant=model, region=REGION, config=config):
        if manifest["kind"] == "HorizontalPodAutoscaler" and not band:
            for direction in ("scaleUp", "scaleDown"):
                del manifest["spec"]["behavior"][direction]["tolerance"]
        try:
            client.create(codecs.from_dict(manifest))
        except lightkube.ApiError as error:
            if error.status.code != 409:  # the namespace, shared by both pools
                raise
    return f"{render_pool.DEDICATED_PREFIX}{name}"


def _wait_for_metrics(client: lightkube.Client, pools: dict[str, str]) -> None:
    """Hold every pod at the walk's mean until both HPAs read CPU, so the run starts warm."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        readings = []
        for name in pools.values():
            _apply(client, name=name, demand=REFERENCE_PODS * REQUEST_MILLICORES * TARGET // 100)
            warm = _sample(client, name=name, at=0, phase="warm", demand=0, began_wall=time.time())
            readings.append(warm.utilization)
        if all(reading is not None for reading in readings):
            return
        time.sleep(1)
    raise SystemExit("the HPAs read no CPU from the metrics API within 180 s")


def _drive(
    client: lightkube.Client, *, pools: dict[str, str], schedule: list[tuple[str, int]]
) -> dict[str, list[Sample]]:
    """Apply the schedule, one second at a time, recording each pool every second."""
    history: dict[str, list[Sample]] = {name: [] for name in pools}
    began, began_wall = time.monotonic(), time.time()
    total = len(schedule) * STEP_SECONDS
    while (elapsed := time.monotonic() - began) < total:
        phase, demand = schedule[int(elapsed // STEP_SECONDS)]
        for label, name in pools.items():
            _apply(client, name=name, demand=demand)
            history[label].append(
                _sample(
                    client, name=name, at=elapsed, phase=phase, demand=demand, began_wall=began_wall
                )
            )
        if int(elapsed) % 30 == 0:
            line = "  ".join(f"{label} {h[-1].replicas:>2}" for label, h in history.items())
            print(f"{elapsed:4.0f}s {phase:<5} {demand:>5}m  {line}", flush=True)
        time.sleep(max(0.0, 1 - (time.monotonic() - began - elapsed)))
    return history


def _apply(client: lightkube.Client, *, name: str, demand: int) -> None:
    """Spread `demand` millicores over the pool's live pods, each capped at its limit."""
    deployment = client.get(apps_v1.Deployment, name, namespace=WORKERS)
    selector: dict[str, Any] = dict(deployment.spec.selector.matchLabels or {})  # type: ignore[union-attr]
    pods = [
        pod
        for pod in client.list(core_v1.Pod, namespace=WORKERS, labels=selector)
        if pod.metadata is not None and pod.metadata.deletionTimestamp is None
    ]
    if not pods:
        return
    value = f"{min(LIMIT_MILLICORES, demand // len(pods))}m"
    for pod in pods:
        assert pod.metadata is not None
        if (pod.metadata.annotations or {}).get(addons.USAGE_CPU_ANNOTATION) == value:
            continue
        # A pod removed by a scale-down meanwhile is gone before its patch.
        with objects.not_found_ignored():
            client.patch(
                core_v1.Pod,
                pod.metadata.name,  # type: ignore[arg-type]
                {"metadata": {"annotations": {addons.USAGE_CPU_ANNOTATION: value}}},
                namespace=WORKERS,
            )


def _sample(
    client: lightkube.Client, *, name: str, at: float, phase: str, demand: int, began_wall: float
) -> Sample:
    deployment = client.get(apps_v1.Deployment, name, namespace=WORKERS)
    hpa = client.get(autoscaling_v2.HorizontalPodAutoscaler, name, namespace=WORKERS)
    return Sample(
        at=at,
        phase=phase,
        demand_millicores=demand,
        replicas=deployment.spec.replicas or 0,  # type: ignore[union-attr]
        desired=hpa.status.desiredReplicas if hpa.status else None,
        utilization=poolview.cpu_utilization(hpa),
        last_scale_at=(
            hpa.status.lastScaleTime.timestamp() - began_wall
            if hpa.status and hpa.status.lastScaleTime
            else None
        ),
    )


def _plot(history: dict[str, list[Sample]], *, path: pathlib.Path) -> None:
    # Imported here: a benchmark-only dependency (the `bench` extra).
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (load_axes, replica_axes) = pyplot.subplots(
        2, 1, sharex=True, figsize=(10, 6), height_ratios=(1, 2)
    )
    band = history["band"]
    load_axes.plot([s.at for s in band], [s.demand_millicores / 1000 for s in band], color="black")
    load_axes.set_ylabel("offered CPU (cores)")
    load_axes.set_title("Same load, two HPAs: the Tenant's band vs the default tolerance")
    for label, color in (("band", "tab:blue"), ("plain", "tab:orange")):
        samples = history[label]
        replica_axes.step(
            [s.at for s in samples], [s.replicas for s in samples], where="post",
            color=color, label=f"{label}: {summarize(samples)['replica_changes']} changes",
        )  # fmt: skip
    for bound in (MIN_REPLICAS, MAX_REPLICAS):
        replica_axes.axhline(bound, color="grey", linestyle=":", linewidth=1)
    replica_axes.set_ylabel("replicas")
    replica_axes.set_xlabel("seconds")
    replica_axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def _print(report: dict[str, Any]) -> None:
    keys = list(report["pools"]["band"])
    print(f"{'':36} {'band':>8} {'plain':>8}")
    for key in keys:
        row = [report["pools"][label][key] for label in ("band", "plain")]
        print(f"{key:36} " + " ".join(f"{'-' if v is None else v:>8}" for v in row))
    band, plain = report["pools"]["band"], report["pools"]["plain"]
    ratio = band["replica_changes"] / max(1, plain["replica_changes"])
    print(f"replica changes band/plain: {ratio:.2f} (target <= 0.5)")
    for target, met in report["targets"].items():
        print(f"{'met' if met else 'MISSED':>6}  {target}")


if __name__ == "__main__":
    main()
