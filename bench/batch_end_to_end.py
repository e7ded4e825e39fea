"""Benchmark: one batch end to end against the ideal time its workers need.

A real local stack (management cluster and one region, a redis-server, the operator
under its ServiceAccount) and real `imagegen worker` processes whose local provider
spends a fixed simulated cost c per image. For W concurrent slots (processes x
concurrency), the ideal wall time of N images is N*c/W; the benchmark prints the
measured time from `kubectl create` to the status saying Succeeded, its ratio to the
ideal (the goal is <= 1.15), the status writes the batch cost and every request the
operator made of the management apiserver meanwhile (its Tenant's reads among them: a
batch is followed from its region's queue channel, not by reading its Tenant).

    .venv/bin/python bench/batch_end_to_end.py [--items 100] [--cost 0.5] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
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
from tests.integration import operatorproc, workerproc

REPO = pathlib.Path(__file__).resolve().parents[1]
REGION = "us-east"
TENANT = "bench"
OPERATOR_USER = "system:serviceaccount:imagegen-system:imagegen-operator"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--cost", type=float, default=0.5, help="simulated seconds per image")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    binaries = build.ensure_built()
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        workdir = pathlib.Path(scratch)
        local = stack.start(workdir=workdir / "stack", binaries=binaries, regions=(REGION,))
        server = redis.start(workdir=workdir / "redis")
        try:
            with clients.sync_client(kubeconfig=local.management.kubeconfig) as kube:
                operator = _operator(kube=kube, local=local, redis_url=server.url, workdir=workdir)
                try:
                    rows = [
                        _run(
                            kube=kube,
                            local=local,
                            redis_url=server.url,
                            workdir=workdir,
                            processes=count,
                            args=args,
                        )
                        for count in args.workers
                    ]
                finally:
                    operator.stop()
        finally:
            server.stop()
            local.stop()
    print(
        f"{'slots':>6} {'ideal s':>8} {'wall s':>8} {'ratio':>6} {'status writes':>14}"
        f" {'requests':>9} {'Tenant GETs':>12}"
    )
    for slots, ideal, wall, cost in rows:
        print(
            f"{slots:>6} {ideal:>8.2f} {wall:>8.2f} {wall / ideal:>6.2f} {cost.writes:>14}"
            f" {cost.requests:>9} {cost.tenant_reads:>12}"
        )


def _operator(
    *, kube: lightkube.Client, local: stack.LocalStack, redis_url: str, workdir: pathlib.Path
) -> operatorproc.OperatorProcess:
    install.apply_files(client=kube, paths=(REPO / "crds").glob("*.yaml"))
    install.wait_crds_established(
        client=kube, names=["tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io"]
    )
    setup = operatorsetup.prepare(
        local=local,
        rbac_dir=REPO / "manifests" / "rbac",
        redis_urls={REGION: redis_url},
        workdir=workdir / "operator",
    )
    operator = operatorproc.OperatorProcess(setup=setup, log_path=workdir / "operator.log")
    operator.start()
    tenant = builders.make_tenant(TENANT).tier("priority").namespace(f"tenant-{TENANT}")
    kube.create(codecs.from_dict(tenant.regions(REGION).obj()))
    _wait(lambda: _condition(kube.get(resources.Tenant, TENANT).to_dict(), "Ready") == "True")
    return operator


def _run(
    *,
    kube: lightkube.Client,
    local: stack.LocalStack,
    redis_url: str,
    workdir: pathlib.Path,
    processes: int,
    args: argparse.Namespace,
) -> tuple[int, float, float, _Cost]:
    pool = workerproc.Workers(
        redis_url=redis_url,
        storage=workdir / f"out-{processes}",
        logs=workdir / "logs",
        tenant=TENANT,
        region=REGION,
    )
    flags = ["--concurrency", str(args.concurrency), "--simulated-cost-seconds", str(args.cost)]
    for _ in range(processes):
        asyncio.run(pool.start(*flags))
    name = f"batch-{processes}"
    batch = builders.make_batch(name, tenant=TENANT).namespace(f"tenant-{TENANT}")
    before = len(_operator_requests(local))
    try:
        began = time.monotonic()
        kube.create(codecs.from_dict(batch.items(args.items, size="64x64").obj()))
        _wait(lambda: _phase(kube, name) == "Succeeded")
        wall = time.monotonic() - began
    finally:
        pool.stop_all()
    slots = processes * args.concurrency
    return slots, args.items * args.cost / slots, wall, _cost(local, name, since=before)


def _phase(kube: lightkube.Client, name: str) -> str | None:
    obj = kube.get(resources.ImageBatch, name, namespace=f"tenant-{TENANT}").to_dict()
    phase: str | None = (obj.get("status") or {}).get("phase")
    return phase


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == kind]
    return str(found[0]["status"]) if found else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Cost:
    """What one batch cost the management apiserver, from its audit log."""

    writes: int
    """Patches of the batch (its status)."""
    requests: int
    """Every request of the operator while the batch ran (the drift checks included)."""
    tenant_reads: int
    """GETs of the batch's Tenant."""


def _operator_requests(local: stack.LocalStack) -> list[dict[str, Any]]:
    return [
        e for e in local.management.audit_events() if e["user"].get("username") == OPERATOR_USER
    ]


def _cost(local: stack.LocalStack, name: str, *, since: int) -> _Cost:
    events = _operator_requests(local)[since:]

    def about(event: dict[str, Any], resource: str, named: str) -> bool:
        ref = event["objectRef"]
        return bool(ref.get("resource") == resource and ref.get("name") == named)

    return _Cost(
        writes=sum(e["verb"] == "patch" and about(e, "imagebatches", name) for e in events),
        requests=len(events),
        tenant_reads=sum(e["verb"] == "get" and about(e, "tenants", TENANT) for e in events),
    )


def _wait(probe: Any, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
