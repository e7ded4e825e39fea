"""`imagegen dev`: the whole system on this machine, on real control planes.

Starts a management cluster and one cluster per region (etcd, kube-apiserver,
kube-controller-manager built from Go modules), a redis-server, installs the CRDs,
applies the examples, runs the operator, prints how to reach everything, and stays up
until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types

from imagegen import resources
from imagegen.localcluster import build, install, operatorsetup, process, redis, stack

_CRD_NAMES = ("tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io")


def run(
    *, workdir: pathlib.Path | None, examples: pathlib.Path, crds: pathlib.Path, rbac: pathlib.Path
) -> int:
    """Run the local stack in the foreground; return the exit code."""
    workdir = workdir or pathlib.Path(tempfile.mkdtemp(prefix="imagegen-dev-"))
    stop_requested = _stop_on_signals()
    print(f"building the control plane if needed (cached under {build.default_cache_dir()})")
    binaries = build.ensure_built()
    started = time.monotonic()
    clusters = stack.start(workdir=workdir, binaries=binaries)
    children: list[process.ManagedProcess] = []
    try:
        region_redis = {
            name: redis.start(workdir=workdir / f"redis-{name}") for name in clusters.regions
        }
        children.extend(server.child for server in region_redis.values())
        redis_urls = {name: server.url for name, server in region_redis.items()}
        print(f"{len(clusters.all_clusters())} clusters ready in {time.monotonic() - started:.1f}s")
        with resources.client_from_kubeconfig(path=clusters.management.kubeconfig) as client:
            install.apply_files(client=client, paths=crds.glob("*.yaml"))
            install.wait_crds_established(client=client, names=_CRD_NAMES)
            applied = install.apply_files(client=client, paths=examples.glob("*.yaml"))
        print("applied:", ", ".join(applied))
        setup = operatorsetup.prepare(
            local=clusters, rbac_dir=rbac, redis_urls=redis_urls, workdir=workdir / "operator"
        )
        children.append(_start_operator(setup=setup, workdir=workdir))
        _wait_tenants_observed(kubeconfig=clusters.management.kubeconfig, timeout_seconds=60)
        _print_access(clusters=clusters, redis_urls=redis_urls, workdir=workdir)
        stop_requested.wait()
    finally:
        print("stopping the local stack")
        for child in reversed(children):
            child.stop()
        clusters.stop()
    return 0


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


def _wait_tenants_observed(*, kubeconfig: pathlib.Path, timeout_seconds: float) -> None:
    """Wait until the operator has written a status for every Tenant, so the first table
    shows what it did rather than an empty READY column."""
    deadline = time.monotonic() + timeout_seconds
    with resources.client_from_kubeconfig(path=kubeconfig) as client:
        while time.monotonic() < deadline:
            tenants = list(client.list(resources.Tenant))
            if all((t.get("status") or {}).get("observedGeneration") for t in tenants):
                return
            time.sleep(0.5)
    print(f"some Tenants have no status after {timeout_seconds}s; see the operator log")


def _print_access(
    *, clusters: stack.LocalStack, redis_urls: dict[str, str], workdir: pathlib.Path
) -> None:
    kubeconfig = clusters.management.kubeconfig
    kubectl = _kubectl()
    if kubectl:
        table = subprocess.run(
            [kubectl, "--kubeconfig", str(kubeconfig), "get", "tenants,imagebatches", "-A"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        print(table.stdout or table.stderr)
        first_region = next(iter(clusters.regions.values()))
        pools = subprocess.run(
            [kubectl, "--kubeconfig", str(first_region.kubeconfig), "get", "deploy,hpa,pdb",
             "-n", "imagegen-workers"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        print(f"worker pools in {first_region.name}:\n{pools.stdout or pools.stderr}")
    print("management cluster:")
    print(f"  export KUBECONFIG={kubeconfig}")
    print("  kubectl get tenants,imagebatches -A")
    for name, regional in clusters.regions.items():
        print(f"region {name}: kubectl --kubeconfig {regional.kubeconfig} get deploy,hpa -A")
        print(f"  redis: {redis_urls[name]}")
    print(f"logs: {workdir}/*/logs, operator: {workdir}/operator.log")
    print("the stack stays up until Ctrl-C")


def _kubectl() -> str | None:
    beside_python = pathlib.Path(sys.executable).parent / "kubectl"
    return str(beside_python) if beside_python.exists() else shutil.which("kubectl")
