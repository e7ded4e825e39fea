"""The whole system on this machine, on real control planes: `imagegen demo` and `imagegen dev`.

Starts a management cluster and one cluster per region (etcd, kube-apiserver,
kube-controller-manager built from Go modules), a redis-server per region, installs the
CRDs and the operator's RBAC, applies the examples, runs the operator under its
ServiceAccount and, because the test control planes have no kubelet, the worker pools as
local processes (one per pool and region, as the Deployments would run them), and the
gateway (the batch API and the UI) under its own ServiceAccount with the management Redis.
`demo` then submits a batch over HTTP, as a partner would, shows its progress and exits;
`dev` stays up until Ctrl-C.
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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import lightkube
import yaml

from imagegen import resources
from imagegen.api import objectstore, operatorconfig
from imagegen.kube import clients
from imagegen.localcluster import (
    build,
    gateway,
    install,
    operatorsetup,
    partner,
    poolview,
    process,
    prometheus,
    redis,
    stack,
)
from imagegen.queue import keys
from imagegen.render import pool

_CRD_NAMES = ("tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io")
_TERMINAL = {"Succeeded", "PartiallySucceeded", "Failed", "Cancelled", "Rejected"}
_IMAGE_COST_SECONDS = 2.0
_VIEW_EVERY_SECONDS = 3.0
_WORKERS = operatorconfig.WorkerPods().namespace
_KEY_SECONDS = 60.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sources:
    """Files of the checkout the stack is made from."""

    examples: pathlib.Path
    crds: pathlib.Path
    rbac: pathlib.Path
    """manifests/rbac: management.yaml and region.yaml (operator), gateway.yaml."""
    alert_rules: pathlib.Path


@dataclasses.dataclass(kw_only=True)
class Running:
    """The running stack."""

    workdir: pathlib.Path
    clusters: stack.LocalStack
    redis_urls: dict[str, str]
    children: list[process.ManagedProcess]
    scrape_targets: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """host:port of each process's /metrics, by Prometheus job."""
    helm: pathlib.Path | None = None
    """The helm a control-plane build made, if any, to try the chart against this stack."""
    gateway: gateway.LocalGateway | None = None

    @property
    def kubeconfig(self) -> pathlib.Path:
        """Admin kubeconfig of the management cluster."""
        return self.clusters.management.kubeconfig


def run_dev(*, workdir: pathlib.Path | None, sources: Sources, out: pathlib.Path) -> int:
    """Run the local stack in the foreground until Ctrl-C or SIGTERM."""
    stop_requested = _stop_on_signals()
    with started_stack(workdir=workdir, sources=sources, out=out) as running:
        _print_access(running)
        _print_chart_hint(running)
        with clients.sync_client(kubeconfig=running.kubeconfig) as client:
            _print_gateway(running, tenants=client.list(resources.Tenant))
        print("the stack stays up until Ctrl-C")
        stop_requested.wait()
    return 0


def run_demo(
    *, workdir: pathlib.Path | None, sources: Sources, out: pathlib.Path, batch: pathlib.Path
) -> int:
    """Start the stack, submit one batch, show its progress, stop; 0 when it succeeded."""
    with (
        started_stack(workdir=workdir, sources=sources, out=out, example_batches=False) as running,
        clients.sync_client(kubeconfig=running.kubeconfig) as client,
        _region_clients(running) as regional,
    ):
        tenant_name, body = partner.request_from_manifest(batch)
        tenant_obj = resources.as_dict(client.get(resources.Tenant, tenant_name))
        namespace = str(tenant_obj["spec"]["namespace"])
        _print_gateway(running, tenants=[client.get(resources.Tenant, tenant_name)])
        assert running.gateway is not None
        key = partner.read_key(
            client, tenant=tenant_name, namespace=namespace, timeout_seconds=_KEY_SECONDS
        )
        created = partner.submit(
            base_url=running.gateway.url, key=key, body=body, timeout_seconds=_KEY_SECONDS
        )
        name = str(created["id"])
        print(f"POST {running.gateway.url}/api/v1/batches ({len(body['items'])} items from"
              f" {batch}) -> 202, batch {name}, Location {created['links']['self']}")  # fmt: skip
        print(f"the same batch as its CR: ImageBatch {namespace}/{name}")
        _print_cr(running, name=name, namespace=namespace)
        print(f"every {_VIEW_EVERY_SECONDS:.0f}s: images done, and per region the CPU its HPA"
              " reads, replicas (now->wanted) [bounds]")  # fmt: skip
        view = _pool_view(regional=regional, tenant_obj=tenant_obj)
        status = _follow(client=client, name=name, namespace=namespace, view=view)
        print(f"final: {view()}")
        print(f"batch {name}: {status.get('phase')}, {status.get('progress')},"
              f" region {status.get('region')}; images under {out}/")  # fmt: skip
        _print_cr(running, name=name, namespace=namespace)
        # The clusters stop when the demo ends: a kubectl hint would name a dead server.
        print("the demo's clusters stop now; `make dev` keeps a stack (and the UI) up")
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
    binaries = build.ensure_built(only=build.LOCAL_STACK)
    began = time.monotonic()
    clusters = stack.start(workdir=workdir, binaries=binaries, region_options=stack.SCALING_REGION)
    running = Running(
        workdir=workdir,
        clusters=clusters,
        redis_urls={},
        children=[],
        helm=build.cached().get("helm"),
    )
    try:
        for name in clusters.regions:
            server = redis.start(workdir=workdir / f"redis-{name}")
            running.children.append(server.child)
            running.redis_urls[name] = server.url
        print(f"{len(clusters.all_clusters())} clusters ready in {time.monotonic() - began:.1f}s")
        with clients.sync_client(kubeconfig=running.kubeconfig) as client:
            install.apply_files(client=client, paths=sources.crds.glob("*.yaml"))
            install.wait_crds_established(client=client, names=_CRD_NAMES)
            examples = [
                path
                for path in sources.examples.glob("*.yaml")
                if example_batches or not _holds_batches(path)
            ]
            applied = install.apply_files(client=client, paths=examples)
            print("applied:", ", ".join(applied))
            # Every region's store is ./out (file://): the demo leaves plain PNGs to open
            # and needs no extra server; deleting a batch deletes its folder there.
            local_store = objectstore.ObjectStore(url=out.resolve().as_uri())
            setup = operatorsetup.prepare(
                local=clusters,
                rbac_dir=sources.rbac,
                redis_urls=running.redis_urls,
                workdir=workdir / "operator",
                stores={name: local_store for name in clusters.regions},
            )
            running.children.append(_start_operator(setup=setup, running=running))
            tenants = _wait_tenants_observed(client=client, timeout_seconds=60)
        running.gateway = _start_gateway(running=running, sources=sources, out=out)
        pools = _pools(running=running, tenants=tenants)
        running.children.extend(_start_workers(running=running, pools=pools, out=out))
        running.children.extend(_start_load_models(running=running, pools=pools))
        running.children.append(
            _start_prometheus(running=running, binary=binaries["prometheus"], sources=sources)
        )
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
    *, setup: operatorsetup.OperatorSetup, running: Running
) -> process.ManagedProcess:
    """The operator as a process of its own, under its ServiceAccount, as in a cluster."""
    port, metrics_port = process.free_port(), process.free_port()
    argv = [sys.executable, "-m", "imagegen", "operator", "--config", str(setup.config_path)]
    argv += ["--kubeconfig", str(setup.kubeconfig)]
    argv += ["--liveness", f"http://127.0.0.1:{port}/healthz"]
    argv += ["--metrics", f"http://127.0.0.1:{metrics_port}/metrics"]
    operator = process.spawn(name="operator", argv=argv, log_path=running.workdir / "operator.log")
    process.wait_for_port(process=operator, port=port, timeout_seconds=60)
    running.scrape_targets["operator"] = [f"127.0.0.1:{metrics_port}"]
    return operator


def _start_gateway(
    *, running: Running, sources: Sources, out: pathlib.Path
) -> gateway.LocalGateway:
    """The gateway under its ServiceAccount, with a Redis of its own (the management
    Redis), serving the images the workers store under `out`."""
    management_redis = redis.start(workdir=running.workdir / "redis-management")
    running.children.append(management_redis.child)
    started = gateway.start(
        management=running.clusters.management,
        rbac=sources.rbac / "gateway.yaml",
        redis_url=management_redis.url,
        workdir=running.workdir / "gateway",
        images_dir=out,
    )
    running.children.append(started.child)
    return started


def _print_gateway(running: Running, *, tenants: Iterable[Any]) -> None:
    """Where the API and the UI are, and how to read each tenant's API key."""
    assert running.gateway is not None
    url = running.gateway.url
    print(f"gateway (batch API): {url}/api/v1/batches   log: {running.workdir}/gateway/gateway.log")
    print(f"batch UI: {url}/ui/   (sign in with a tenant's API key)")
    for obj in tenants:
        found = resources.as_dict(obj)
        tenant_name, namespace = found["metadata"]["name"], found["spec"]["namespace"]
        command = partner.key_command(
            kubeconfig=running.kubeconfig, tenant=tenant_name, namespace=namespace
        )
        print(f"  API key of tenant {tenant_name}: {command}")


def _print_cr(running: Running, *, name: str, namespace: str) -> None:
    """The batch's CR as kubectl shows it, while the clusters still run."""
    kubectl = _kubectl()
    if kubectl is None:
        return
    table = subprocess.run(
        [kubectl, "--kubeconfig", str(running.kubeconfig), "get", "imagebatch", name,
         "-n", namespace],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    print(table.stdout or table.stderr, end="")


def _start_prometheus(
    *, running: Running, binary: pathlib.Path, sources: Sources
) -> process.ManagedProcess:
    """Prometheus scraping the operator and the workers, with the alert rules loaded."""
    server, queries = prometheus.start_for_stack(
        binary=binary,
        workdir=running.workdir / "prometheus",
        operator=running.scrape_targets["operator"][0],
        workers=running.scrape_targets.get("workers", []),
        rule_files=[sources.alert_rules],
    )
    print(f"Prometheus: {server.url} (alert rules loaded); queries worth running:")
    for meaning, query in queries:
        print(f"  {meaning}:\n    {query}")
    return server.child


@dataclasses.dataclass(frozen=True, kw_only=True, order=True)
class _Pool:
    """A worker pool of one region: its queue and the Deployment that runs it."""

    region: str
    queue_pool: str
    """`shared` or `dedicated-<tenant>`."""
    deployment: str
    worker_flags: tuple[str, ...]
    """How `imagegen worker` is told which pool to serve."""


def _pools(*, running: Running, tenants: list[dict[str, Any]]) -> list[_Pool]:
    """Each dedicated tenant's pool and the shared pool wherever a shared tenant runs."""
    pools: set[_Pool] = set()
    for obj in tenants:
        spec, name = obj["spec"], obj["metadata"]["name"]
        for region in spec["regions"]:
            if region not in running.redis_urls:
                continue
            if spec.get("workers", {}).get("pool") == "shared":
                pools.add(
                    _Pool(region=region, queue_pool=keys.SHARED, deployment=pool.SHARED_POOL,
                          worker_flags=("--pool", keys.SHARED))
                )  # fmt: skip
            else:
                pools.add(
                    _Pool(region=region, queue_pool=keys.dedicated(tenant=name),
                          deployment=f"{pool.DEDICATED_PREFIX}{name}",
                          worker_flags=("--tenant", name))
                )  # fmt: skip
    return sorted(pools)


def _start_workers(
    *, running: Running, pools: list[_Pool], out: pathlib.Path
) -> list[process.ManagedProcess]:
    """One worker process per pool and region, standing in for the pool's Deployment,
    which runs on simulated nodes. Each image costs the local provider a while, as a real
    model would, so that a batch lasts long enough for the autoscaler to react."""
    workers = []
    for each in pools:
        argv = [sys.executable, "-m", "imagegen", "worker", "--region", each.region]
        argv += [*each.worker_flags, "--redis-url", running.redis_urls[each.region]]
        port = process.free_port()
        argv += ["--storage-dir", str(out), "--concurrency", "4", "--port", str(port)]
        running.scrape_targets.setdefault("workers", []).append(f"127.0.0.1:{port}")
        argv += ["--simulated-cost-seconds", str(_IMAGE_COST_SECONDS)]
        workers.append(
            process.spawn(
                name=f"worker-{each.region}-{each.queue_pool}",
                argv=argv,
                log_path=running.workdir / "workers" / f"{each.region}-{each.queue_pool}.log",
            )
        )
    print(f"{len(workers)} worker process(es) for {len(pools)} pool(s)")
    return workers


def _start_load_models(*, running: Running, pools: list[_Pool]) -> list[process.ManagedProcess]:
    """SIMULATION, one per region: each pool's queue sets its pods' simulated CPU, which
    the metrics API reports and the real HPA controller scales on."""
    models = []
    for region, regional in running.clusters.regions.items():
        here = [each for each in pools if each.region == region]
        targets = [f"{each.queue_pool}={each.deployment}" for each in here]
        if not targets:
            continue
        argv = [sys.executable, "-m", "imagegen.sim", "--kubeconfig", str(regional.kubeconfig)]
        argv += ["--redis-url", running.redis_urls[region], "--noise", "0.05"]
        argv += [arg for target in targets for arg in ("--target", target)]
        models.append(
            process.spawn(
                name=f"load-model-{region}",
                argv=argv,
                log_path=running.workdir / "load-models" / f"{region}.log",
            )
        )
    return models


def _wait_tenants_observed(
    *, client: lightkube.Client, timeout_seconds: float
) -> list[dict[str, Any]]:
    """Wait until the operator has written a status for every Tenant; return them."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        tenants = [resources.as_dict(t) for t in client.list(resources.Tenant)]
        done = all((t.get("status") or {}).get("observedGeneration") for t in tenants)
        if done or time.monotonic() > deadline:
            if not done:
                print(f"some Tenants have no status after {timeout_seconds}s; see operator.log")
            return tenants
        time.sleep(0.5)


def _follow(
    *, client: lightkube.Client, name: str, namespace: str, view: Callable[[], str]
) -> dict[str, Any]:
    """Print, every few seconds until the batch ends, a line of its progress and of its
    tenant's worker pools in every region; return the batch's last status."""
    began = time.monotonic()
    shown_at = -_VIEW_EVERY_SECONDS
    status: dict[str, Any] = {}
    while status.get("phase") not in _TERMINAL:
        time.sleep(0.5)
        obj = resources.as_dict(client.get(resources.ImageBatch, name, namespace=namespace))
        status = obj.get("status") or {}
        elapsed = time.monotonic() - began
        if elapsed - shown_at < _VIEW_EVERY_SECONDS and status.get("phase") not in _TERMINAL:
            continue
        shown_at = elapsed
        counts = status.get("counts") or {}
        total = counts.get("total") or len(obj["spec"]["items"])
        done = counts.get("succeeded", 0) + counts.get("failed", 0)
        print(
            f"{elapsed:5.0f}s {done:>3}/{total} {status.get('phase', 'Pending'):<9} {view()}",
            flush=True,
        )
    return status


@contextlib.contextmanager
def _region_clients(running: Running) -> Iterator[dict[str, lightkube.Client]]:
    """An admin client of every regional cluster, closed on exit."""
    with contextlib.ExitStack() as stack_of_clients:
        yield {
            name: stack_of_clients.enter_context(
                clients.sync_client(kubeconfig=regional.kubeconfig)
            )
            for name, regional in running.clusters.regions.items()
        }


def _pool_view(
    *, regional: dict[str, lightkube.Client], tenant_obj: dict[str, Any]
) -> Callable[[], str]:
    """A function drawing the tenant's pool in each of its regions as one line."""
    spec = tenant_obj["spec"]
    shared = spec.get("workers", {}).get("pool") == "shared"
    name = (
        pool.SHARED_POOL if shared else f"{pool.DEDICATED_PREFIX}{tenant_obj['metadata']['name']}"
    )

    def view() -> str:
        states = [
            poolview.read(regional[region], region=region, name=name, namespace=_WORKERS)
            for region in spec["regions"]
            if region in regional
        ]
        return poolview.line([state for state in states if state is not None])

    return view


def _print_chart_hint(running: Running) -> None:
    """How to try the Helm chart against this stack: a server-side dry run of what it
    renders, validated by the management cluster's apiserver (CRDs, Pod Security)."""
    if running.helm is None:
        return
    print("try the Helm chart against this stack's management cluster (server-side dry run):")
    print(f"  {running.helm} template imagegen charts/imagegen -n imagegen-system"
          " -f examples/helm/values-three-regions.yaml |")  # fmt: skip
    print(f"    kubectl --kubeconfig {running.kubeconfig} apply --dry-run=server -f -")
    print("  docs/install.md installs it for real on clusters of your own")


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
             "-n", _WORKERS],
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


def _kubectl() -> str | None:
    beside_python = pathlib.Path(sys.executable).parent / "kubectl"
    return str(beside_python) if beside_python.exists() else shutil.which("kubectl")
