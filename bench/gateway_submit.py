"""Benchmark: accepted batch submissions per second through the gateway, with p50 and p99
latency, against a bare FastAPI endpoint served the same way in the same run.

Starts a real management control plane (etcd + kube-apiserver), a redis-server, the real
`imagegen gateway` process under its ServiceAccount, and `bench/bare_submit.py` under
uvicorn. The API-key index and the Tenant are written as the operator would write them
(no operator runs: nothing here admits the batches, which is not what is measured). Each
submission is a 10-image batch; every gateway submission creates an ImageBatch CR after
auth, a GCRA decision and validation. Prints both runs and the ratio gateway / bare.

    .venv/bin/python bench/gateway_submit.py [--requests 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import httpx
from lightkube import codecs
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen.gateway import keyindex
from imagegen.kube import clients
from imagegen.localcluster import build, cluster, install, operatorsetup, process, redis

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tests import builders
from tests.integration import gatewayproc

REPO = pathlib.Path(__file__).resolve().parents[1]
TENANT = "bench"
KEY = "igk_" + "b" * 43
ITEMS_PER_BATCH = 10
PATH = "/api/v1/batch/generate"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    name: str
    accepted: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        runs = measure(pathlib.Path(scratch), requests=args.requests, concurrency=args.concurrency)
    report(runs, concurrency=args.concurrency)


def measure(workdir: pathlib.Path, *, requests: int, concurrency: int) -> tuple[Run, Run]:
    management = cluster.start(
        name="management", workdir=workdir / "management", binaries=build.ensure_built()
    )
    store = redis.start(workdir=workdir / "redis")
    gateway = bare = None
    try:
        kubeconfig = prepare(management, workdir)
        gateway = gatewayproc.GatewayProcess(
            kubeconfig=kubeconfig, redis_url=store.url, workdir=workdir / "gateway"
        )
        gateway.start()
        bare_port = process.free_port()
        bare = process.spawn(
            name="bare",
            argv=[
                sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "bench"),
                "bare_submit:app", "--host", "127.0.0.1", "--port", str(bare_port),
                "--no-access-log", "--log-level", "warning",
            ],
            log_path=workdir / "bare.log",
        )  # fmt: skip
        process.wait_for_port(process=bare, port=bare_port, timeout_seconds=30)
        bare_run = asyncio.run(load("bare FastAPI", f"http://127.0.0.1:{bare_port}",
                                    requests=requests, concurrency=concurrency))  # fmt: skip
        gateway_run = asyncio.run(
            load("gateway", gateway.url, requests=requests, concurrency=concurrency)
        )
    finally:
        if bare is not None:
            bare.stop()
        if gateway is not None:
            gateway.stop()
        store.stop()
        management.stop()
    return bare_run, gateway_run


def prepare(management: cluster.LocalCluster, workdir: pathlib.Path) -> pathlib.Path:
    """CRDs, RBAC, a Tenant with room for the whole run and its key index; the gateway's
    ServiceAccount kubeconfig."""
    rbac = REPO / "manifests" / "rbac"
    with clients.sync_client(kubeconfig=management.kubeconfig) as admin:
        install.apply_files(client=admin, paths=(REPO / "crds").glob("*.yaml"))
        install.wait_crds_established(
            client=admin,
            names=("tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io"),
        )
        install.apply_files(client=admin, paths=[rbac / "management.yaml"])
        admin.create(core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=f"tenant-{TENANT}")))
        tenant = (
            builders.make_tenant(TENANT).rate_limit(requests_per_minute=100_000, burst=100_000)
            .quota(max_images_per_minute=10_000_000).obj()
        )  # fmt: skip
        admin.create(codecs.from_dict(tenant))
        admin.create(
            core_v1.ConfigMap(
                metadata=meta_v1.ObjectMeta(
                    name=f"api-keys-{TENANT}", namespace=operatorsetup.NAMESPACE,
                    labels={"imagegen.semantest.io/api-key-index": "true"},
                ),
                data={keyindex.digest(KEY): json.dumps({"tenant": TENANT, "expiresAt": None})},
            )
        )  # fmt: skip
    return operatorsetup.service_account_kubeconfig(
        target=management, manifest=rbac / "gateway.yaml", workdir=workdir,
        account="imagegen-gateway",
    )  # fmt: skip


def body(n: int) -> dict[str, Any]:
    return {
        "items": [
            {"prompt": f"a lighthouse, take {n}.{i}", "size": "64x64"}
            for i in range(ITEMS_PER_BATCH)
        ]
    }


async def load(name: str, url: str, *, requests: int, concurrency: int) -> Run:
    """`requests` submissions from `concurrency` clients at once, after a warm-up."""
    headers = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:
        for n in range(20):
            (await http.post(PATH, json=body(-n))).raise_for_status()
        latencies: list[float] = []
        accepted = 0
        counter = iter(range(requests))

        async def client() -> None:
            nonlocal accepted
            for n in counter:
                started = time.perf_counter()
                reply = await http.post(PATH, json=body(n))
                latencies.append(time.perf_counter() - started)
                accepted += reply.status_code == 202

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Run(name=name, accepted=accepted, seconds=seconds, latencies=latencies)


def report(runs: tuple[Run, Run], *, concurrency: int) -> None:
    bare, gateway = runs
    print(f"{ITEMS_PER_BATCH}-image submissions, {concurrency} concurrent clients")
    print(f"{'server':<14}{'accepted':>9}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for run in runs:
        print(
            f"{run.name:<14}{run.accepted:>9}{run.per_second:>9.1f}"
            f"{run.percentile(0.50) * 1000:>9.1f}{run.percentile(0.99) * 1000:>9.1f}"
            f"{statistics.fmean(run.latencies) * 1000:>9.1f}"
        )
    print(
        f"gateway / bare: throughput {gateway.per_second / bare.per_second:.3f}x, "
        f"p50 {gateway.percentile(0.5) / bare.percentile(0.5):.1f}x, "
        f"p99 {gateway.percentile(0.99) / bare.percentile(0.99):.1f}x"
    )


if __name__ == "__main__":
    main()
