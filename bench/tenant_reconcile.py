"""Benchmark: Tenants reconciled from scratch into three regions, then left alone.

Runs the real operator (a process of its own, under its ServiceAccount) against a fresh
local stack of real control planes, once with a small baseline fleet and once with the
full fleet, and prints for each: wall time until every Tenant is Ready, API requests per
Tenant (from the apiservers' audit logs), the operator's peak memory, and the steady
state (requests per minute while nothing changes). Ratios compare the two runs.

    .venv/bin/python bench/tenant_reconcile.py [--tenants 200] [--baseline 10]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import pathlib
import sys
import tempfile
import time
from typing import Any

import lightkube
from lightkube import codecs

from imagegen import resources
from imagegen.kube import clients
from imagegen.localcluster import build, install, operatorsetup, redis, stack

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tests import builders
from tests.integration import operatorproc

REPO = pathlib.Path(__file__).resolve().parents[1]
OPERATOR_USER = "system:serviceaccount:imagegen-system:imagegen-operator"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    tenants: int
    seconds_to_ready: float
    requests: int
    writes: int
    peak_rss_mib: float
    steady_requests_per_minute: float
    steady_writes: int
    steady_write_kinds: dict[str, int]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--drift-seconds", type=int, default=60)
    parser.add_argument("--steady-seconds", type=int, default=120)
    args = parser.parse_args()
    binaries = build.ensure_built()
    runs = [
        measure(
            binaries=binaries,
            tenants=count,
            drift_seconds=args.drift_seconds,
            steady_seconds=args.steady_seconds,
        )
        for count in (args.baseline, args.tenants)
    ]
    report(runs)


def measure(
    *, binaries: dict[str, pathlib.Path], tenants: int, drift_seconds: int, steady_seconds: int
) -> Run:
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        workdir = pathlib.Path(scratch)
        local = stack.start(workdir=workdir / "stack", binaries=binaries)
        servers = {name: redis.start(workdir=workdir / f"redis-{name}") for name in local.regions}
        try:
            with clients.sync_client(kubeconfig=local.management.kubeconfig) as kube:
                install.apply_files(client=kube, paths=(REPO / "crds").glob("*.yaml"))
                install.wait_crds_established(
                    client=kube,
                    names=["tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io"],
                )
                setup = operatorsetup.prepare(
                    local=local,
                    rbac_dir=REPO / "manifests" / "rbac",
                    redis_urls={name: server.url for name, server in servers.items()},
                    workdir=workdir / "operator",
                    config_overrides={"driftCheckSeconds": drift_seconds},
                )
                operator = operatorproc.OperatorProcess(
                    setup=setup, log_path=workdir / "operator.log"
                )
                operator.start()
                try:
                    return _cold_and_steady(
                        kube=kube,
                        local=local,
                        operator=operator,
                        tenants=tenants,
                        steady_seconds=steady_seconds,
                    )
                finally:
                    operator.stop()
        finally:
            for server in servers.values():
                server.stop()
            local.stop()


def _cold_and_steady(
    *,
    kube: lightkube.Client,
    local: stack.LocalStack,
    operator: operatorproc.OperatorProcess,
    tenants: int,
    steady_seconds: int,
) -> Run:
    names = [f"bench-{n:04d}" for n in range(tenants)]
    started = time.monotonic()
    for name in names:
        obj = (
            builders.make_tenant(name)
            .namespace(f"tenant-{name}")
            .regions("us-east", "eu-west", "asia-pacific")
        )
        kube.create(codecs.from_dict(obj.obj()))
    while not _all_ready(kube, len(names)):
        time.sleep(0.5)
    seconds_to_ready = time.monotonic() - started
    cold = _operator_requests(local)
    peak = _peak_rss_mib(operator)
    offsets = {name: len(events) for name, events in _requests_by_cluster(local).items()}
    time.sleep(steady_seconds)
    steady = [
        event
        for name, events in _requests_by_cluster(local).items()
        for event in events[offsets[name] :]
    ]
    return Run(
        tenants=tenants,
        seconds_to_ready=seconds_to_ready,
        requests=len(cold),
        writes=sum(1 for e in cold if e["verb"] in WRITES),
        peak_rss_mib=peak,
        steady_requests_per_minute=len(steady) * 60 / steady_seconds,
        steady_writes=sum(1 for e in steady if e["verb"] in WRITES),
        steady_write_kinds=dict(
            collections.Counter(
                f"{e['verb']} {e['objectRef'].get('resource')}"
                for e in steady
                if e["verb"] in WRITES
            )
        ),
    )


def _all_ready(kube: lightkube.Client, expected: int) -> bool:
    ready = 0
    for tenant in kube.list(resources.Tenant):
        status = tenant.get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        ready += conditions.get("Ready") == "True"
    return bool(ready == expected)


def _requests_by_cluster(local: stack.LocalStack) -> dict[str, list[dict[str, Any]]]:
    """Audit events of the operator's requests, per cluster, oldest first."""
    return {
        running.name: [
            e for e in running.audit_events() if e["user"].get("username") == OPERATOR_USER
        ]
        for running in local.all_clusters()
    }


def _operator_requests(local: stack.LocalStack) -> list[dict[str, Any]]:
    return [e for events in _requests_by_cluster(local).values() for e in events]


def _peak_rss_mib(operator: operatorproc.OperatorProcess) -> float:
    assert operator.child is not None
    for line in pathlib.Path(f"/proc/{operator.child.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(runs: list[Run]) -> None:
    """Print one row per run, then the full run's figures as ratios of the baseline's."""
    print(
        f"{'tenants':>8} {'ready s':>8} {'s/tenant':>9} {'req/tenant':>11}"
        f" {'writes/tenant':>14} {'peak MiB':>9} {'steady req/min':>15} {'steady writes':>14}"
    )
    for run in runs:
        per_tenant = run.seconds_to_ready / run.tenants
        print(
            f"{run.tenants:>8} {run.seconds_to_ready:>8.1f} {per_tenant:>9.3f}"
            f" {run.requests / run.tenants:>11.1f} {run.writes / run.tenants:>14.1f}"
            f" {run.peak_rss_mib:>9.1f} {run.steady_requests_per_minute:>15.0f}"
            f" {run.steady_writes:>14}"
        )
        if run.steady_write_kinds:
            print(f"{'':>8} steady writes: {run.steady_write_kinds}")
    base, full = runs

    def ratio(full_value: float, base_value: float) -> str:
        return f"x{full_value / base_value:.2f}" if base_value else "n/a"

    print(
        "full/baseline:"
        f" tenants {ratio(full.tenants, base.tenants)},"
        f" wall time {ratio(full.seconds_to_ready, base.seconds_to_ready)},"
        f" requests per tenant"
        f" {ratio(full.requests / full.tenants, base.requests / base.tenants)},"
        f" peak memory {ratio(full.peak_rss_mib, base.peak_rss_mib)},"
        f" steady requests/min"
        f" {ratio(full.steady_requests_per_minute, base.steady_requests_per_minute)}"
    )


if __name__ == "__main__":
    main()
