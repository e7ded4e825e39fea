"""The whole system on this machine, on real control planes: `imagegen demo` and `imagegen dev`.

Starts a management cluster and one cluster per region (etcd, kube-apiserver,
kube-controller-manager built from Go modules), a redis-server per region, installs the
CRDs and the operator's RBAC, applies the examples, runs the operator under its
ServiceAccount and, because the test control planes have no kubelet, the worker pools as
local processes (one per pool and region, as the Deployments would run them).
`demo` then submits a batch, shows its progress and exits; `dev` stays up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import lightkube
import yaml

from imagegen import resources
from imagegen.localcluster import build, install, operatorsetup, process, redis, stack

_CRD_NAMES = ("tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io")
_TERMINAL = {"Succeeded", "PartiallySucceeded", "Failed", "Cancelled", "Rejected"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sources:
    """Files of the checkout the stack is made from."""

    examples: pathlib.Path
    crds: pathlib.Path
    rbac: pathlib.Path


@dataclasses.dataclass(kw_only=True)
class Running:
    """The running stack."""

    workdir: pathlib.Path
    clusters: stack.LocalStack
    redis_urls: dict[str, str]
    children: list[process.ManagedProcess]

    @property
    def kubeconfig(self) -> pathlib.Path:
        """Admin kubeconfig of the management cluster."""
        return self.clusters.management.kubeconfig


def run_dev(*, workdir: pathlib.Path | None, sources: Sources, out: pathlib.Path) -> int:
    """Run the local stack in the foreground until Ctrl-C or SIGTERM."""
    stop_requested = _stop_on_signals()
    with started_stack(workdir=workdir, sources=sources, out=out) as running:
        _print_access(running)
        print("the stack stays up until Ctrl-C")
        stop_requested.wait()
    return 0


def run_demo(
    *, workdir: pathlib.Path | None, sources: Sources, out: pathlib.Path, batch: pathlib.Path
) -> int:
    """Start the stack, submit one batch, show its progress, stop; 0 when it succeeded."""
    with started_stack(workdir=workdir, sources=sources, out=out, example_batches=False) as running:
        with resources.client_from_kubeconfig(path=running.kubeconfig) as client:
            submitted = install.apply_files(client=client, paths=[batch])
            metadata = yaml.safe_load(batch.read_text())["metadata"]
            name, namespace = str(metadata["name"]), str(metadata["namespace"])
            print(f"submitted {', '.join(submitted)}")
            status = _follow(client=client, name=name, namespace=namespace)
        print(f"\nbatch {name}: {status.get('phase')}, {status.get('progress')},"
              f" region {status.get('region')}; images under {out}/")  # fmt: skip
        print(f"inspect it: kubectl --kubeconfig {running.kubeconfig} get imagebatch {name}"
              f" -n {namespace} -o yaml")  # fmt: skip
        return 0 if status.get("phase") == "Succeeded" else 1


@contextlib.contextmanager
def started_stack(
    *,
    workdir: pathlib.Path | None,
    sources: Sources,
    out: pathlib.Path,
    example_batches: bool = True,
) -> Iterator[Running]:
    """Everything started and ready; stopped, every process reaped, on exit."""
    workdir = workdir or pathlib.Path(tempfile.mkdtemp(prefix="imagegen-dev-"))
    print(f"building the control plane if needed (cached under {build.default_cache_dir()})")
    binaries = build.ensure_built()
    began = time.monotonic()
    clusters = stack.start(workdir=workdir, binaries=binaries)
    running = Running(workdir=workdir, clusters=clusters, redis_urls={}, children=[])
    try:
        for name in clusters.regions:
            server = redis.start(workdir=workdir / f"redis-{name}")
            running.children.append(server.child)
            running.redis_urls[name] = server.url
        print(f"{len(clusters.all_clusters())} clusters ready in {time.monotonic() - began:.1f}s")
        with resources.client_from_kubeconfig(path=running.kubeconfig) as client:
            install.apply_files(client=client, paths=sources.crds.glob("*.yaml"))
            install.wait_crds_established(client=client, names=_CRD_NAMES)
            examples = [
                path
                for path in sources.examples.glob("*.yaml")
                if example_batches or not _holds_batches(path)
            ]
            applied = install.apply_files(client=client, paths=examples)
            print("applied:", ", ".join(applied))
            setup = operatorsetup.prepare(
                local=clusters,
                rbac_dir=sources.rbac,
                redis_urls=running.redis_urls,
                workdir=workdir / "operator",
            )
            running.children.append(_start_operator(setup=setup, workdir=workdir))
            tenants = _wait_tenants_observed(client=client, timeout_seconds=60)
        running.children.extend(_start_workers(running=running, tenants=tenants, out=out))
        yield running
    finally:
        print("stopping the local stack")
        for child in reversed(running.children):
            child.stop()
        clusters.stop()


def _holds_batches(path: pathlib.Path) -> bool:
    """Whether a manifest file holds ImageBatches (the demo submits its own, alone, so
    that ./out holds exactly its images)."""
    return any(
        (document or {}).get("kind") == "ImageBatch"
        for document in yaml.safe_load_all(path.read_text())
    )


def _stop_on_signals() -> threading.Event:
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: types.FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop_requested


def _start_operator(
    *, setup: operatorsetup.OperatorSetup, workdir: pathlib.Path
) -> process.ManagedProcess:
    """The operator as a process of its own, under its ServiceAccount, as in a cluster."""
    port = process.free_port()
    argv = [sys.executable, "-m", "imagegen", "operator", "--config", str(setup.config_path)]
    argv += ["--kubeconfig", str(setup.kubeconfig)]
    operator = process.spawn(
        name="operator",
        argv=[*argv, "--liveness", f"http://127.0.0.1:{port}/healthz"],
        log_path=workdir / "operator.log",
    )
    process.wait_for_port(process=operator, port=port, timeout_seconds=60)
    return operator


def _start_workers(
    *, running: Running, tenants: list[dict[str, Any]], out: pathlib.Path
) -> list[process.ManagedProcess]:
    """One worker process per pool and region: each dedicated tenant's, and the shared
    pool where a shared tenant runs."""
    pools: set[tuple[str, str, str]] = set()
    for obj in tenants:
        spec = obj["spec"]
        for region in spec["regions"]:
            if region not in running.redis_urls:
                continue
            if spec.get("workers", {}).get("pool") == "shared":
                pools.add((region, "--pool", "shared"))
            else:
                pools.add((region, "--tenant", obj["metadata"]["name"]))
    workers = []
    for region, flag, value in sorted(pools):
        argv = [sys.executable, "-m", "imagegen", "worker", "--region", region, flag, value]
        argv += ["--redis-url", running.redis_urls[region], "--storage-dir", str(out)]
        argv += ["--concurrency", "4", "--port", "0"]
        workers.append(
            process.spawn(
                name=f"worker-{region}-{value}",
                argv=argv,
                log_path=running.workdir / "workers" / f"{region}-{value}.log",
            )
        )
    print(f"{len(workers)} worker process(es) for {len(pools)} pool(s)")
    return workers


def _wait_tenants_observed(
    *, client: lightkube.Client, timeout_seconds: float
) -> list[dict[str, Any]]:
    """Wait until the operator has written a status for every Tenant; return them."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        tenants = [_as_dict(t) for t in client.list(resources.Tenant)]
        done = all((t.get("status") or {}).get("observedGeneration") for t in tenants)
        if done or time.monotonic() > deadline:
            if not done:
                print(f"some Tenants have no status after {timeout_seconds}s; see operator.log")
            return tenants
        time.sleep(0.5)


def _follow(*, client: lightkube.Client, name: str, namespace: str) -> dict[str, Any]:
    """Draw a progress bar in place until the batch ends; return its last status."""
    status: dict[str, Any] = {}
    while status.get("phase") not in _TERMINAL:
        time.sleep(0.5)
        obj = _as_dict(client.get(resources.ImageBatch, name, namespace=namespace))
        status = obj.get("status") or {}
        counts = status.get("counts") or {}
        total = counts.get("total") or len(obj["spec"]["items"])
        done = counts.get("succeeded", 0) + counts.get("failed", 0)
        bar = "#" * (30 * done // max(total, 1))
        print(
            f"\r[{bar:<30}] {done:>3}/{total} {status.get('phase', 'Pending'):<18}"
            f" {status.get('region') or ''}",
            end="",
            flush=True,
        )
    return status


def _print_access(running: Running) -> None:
    kubectl = _kubectl()
    if kubectl:
        table = subprocess.run(
            [kubectl, "--kubeconfig", str(running.kubeconfig), "get", "tenants,imagebatches", "-A"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        print(table.stdout or table.stderr)
        first_region = next(iter(running.clusters.regions.values()))
        pools = subprocess.run(
            [kubectl, "--kubeconfig", str(first_region.kubeconfig), "get", "deploy,hpa,pdb",
             "-n", "imagegen-workers"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        print(f"worker pools in {first_region.name}:\n{pools.stdout or pools.stderr}")
    print("management cluster:")
    print(f"  export KUBECONFIG={running.kubeconfig}")
    print("  kubectl get tenants,imagebatches -A")
    for name, regional in running.clusters.regions.items():
        print(f"region {name}: kubectl --kubeconfig {regional.kubeconfig} get deploy,hpa -A")
        print(f"  redis: {running.redis_urls[name]}")
    print(f"logs: {running.workdir}/*/logs, operator: {running.workdir}/operator.log")


def _as_dict(obj: Any) -> dict[str, Any]:
    plain: dict[str, Any] = obj.to_dict()
    return plain


def _kubectl() -> str | None:
    beside_python = pathlib.Path(sys.executable).parent / "kubectl"
    return str(beside_python) if beside_python.exists() else shutil.which("kubectl")
