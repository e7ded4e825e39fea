"""A real Kubernetes control plane on loopback ports: etcd, kube-apiserver (RBAC, a static
admin token), kube-controller-manager and optionally kube-scheduler, simulated nodes (kwok)
and the metrics API (metrics-server), plus a kubeconfig.

Used by the pytest fixtures and by `imagegen dev`. Everything lives in one work folder;
`stop()` leaves no process and no listening port behind.
"""

from __future__ import annotations

import dataclasses
import http
import json
import pathlib
import secrets
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from imagegen.localcluster import addons, pki, process

ADMIN_USER = "imagegen-admin"

# Every request of anyone but the admin (the harness and the controllers) is recorded,
# so tests can count what the operator asked of a cluster.
_AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "None", "users": [ADMIN_USER]}, {"level": "Metadata"}],
}

# The apiserver's own /readyz turns ready only after its post-start hooks (RBAC bootstrap
# roles among them) have run; with etcd up this takes about 2 s here, longer when several
# clusters start at once on two cores.
DEFAULT_READY_TIMEOUT_SECONDS = 120.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    """What to run in one local cluster, and the flags only tests want."""

    scheduler: bool = False
    """kube-scheduler binds pods to (simulated) nodes; a cluster without pods needs none."""
    nodes: int = 0
    """Simulated nodes run by kwok, each with `node_allocatable`; pods on them turn
    Running and use the CPU of their addons.USAGE_CPU_ANNOTATION. Needs the scheduler."""
    node_allocatable: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: dict(addons.NODE_ALLOCATABLE)
    )
    """What each simulated node offers (cpu, memory, pods): by default room for everything
    the tests run; a benchmark that wants a full region gives less."""
    metrics: bool = False
    """metrics-server, serving metrics.k8s.io (what the HPA controller reads) from kwok."""
    controller_manager_flags: Sequence[str] = ()
    """Extra kube-controller-manager flags: tests of the real HPA pass
    --horizontal-pod-autoscaler-sync-period=5s (default 15s). The scale-down stabilization is
    no flag: each HPA has its own behavior.scaleDown.stabilizationWindowSeconds, as ours do."""
    apiserver_flags: Sequence[str] = ()
    """Extra kube-apiserver flags."""

    def __post_init__(self) -> None:
        if self.nodes < 0:
            raise ValueError(f"nodes must be 0 or more, not {self.nodes}")
        if self.nodes and not self.scheduler:
            raise ValueError("nodes need the scheduler: without it their pods stay Pending")


@dataclasses.dataclass(kw_only=True)
class LocalCluster:
    """A running control plane and how to reach it."""

    name: str
    workdir: pathlib.Path
    server: str
    token: str
    kubeconfig: pathlib.Path
    ca_cert: pathlib.Path
    processes: list[process.ManagedProcess]
    ports: list[int]
    controllers: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)
    """Controllers (name, argv) to start once the apiserver is ready: they give up on an
    apiserver that is slow to come up, as it is when several clusters start on two cores."""
    objects: list[addons.ApiObject] = dataclasses.field(default_factory=list)
    """API objects (simulated Nodes, the metrics APIService) to create once the apiserver
    is ready, before the controllers start."""

    @property
    def audit_log(self) -> pathlib.Path:
        """JSON lines, one per request of a non-admin user (the operator, for one)."""
        return self.workdir / "logs" / "audit.log"

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit events recorded so far."""
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line]

    def stop_apiserver(self) -> None:
        """Stop the apiserver alone, as an outage of the region would look."""
        self.stop_process("kube-apiserver")

    def start_apiserver(self) -> None:
        """Start the stopped apiserver again on the same port and wait until it is ready."""
        self.start_process("kube-apiserver")
        self.wait_ready()

    def stop_process(self, name: str) -> None:
        """Stop one of the cluster's processes (say metrics-server), as its outage looks."""
        self._process(name).stop()

    def start_process(self, name: str) -> None:
        """Start a stopped process again with the same command line, so the same port."""
        stopped = self._process(name)
        restarted = process.spawn(name=stopped.name, argv=stopped.argv, log_path=stopped.log_path)
        self.processes[self.processes.index(stopped)] = restarted

    def _start_controllers(self) -> None:
        # Plain HTTP, not lightkube: this runs in a thread per cluster, and lightkube's decoder
        # (msgspec) crashed Python (SIGSEGV) when three threads decoded at once. A conflict is
        # an object made by an earlier try whose reply was lost; wait_ready retries failures.
        while self.objects:
            try:
                self.post(self.objects[0].collection, self.objects[0].manifest)
            except urllib.error.HTTPError as error:
                if error.code != http.HTTPStatus.CONFLICT:
                    raise
            self.objects.pop(0)
        while self.controllers:
            name, argv = self.controllers.pop(0)
            self.processes.append(
                process.spawn(name=name, argv=argv, log_path=self.workdir / "logs" / f"{name}.log")
            )

    def _process(self, name: str) -> process.ManagedProcess:
        found = next((child for child in self.processes if child.name == name), None)
        if found is None:
            running = ", ".join(child.name for child in self.processes)
            raise KeyError(f"cluster {self.name} runs no {name} (it runs {running})")
        return found

    def wait_ready(self, *, timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS) -> None:
        """Block until the apiserver's /readyz says ok; raise StartError with logs if not."""
        deadline = time.monotonic() + timeout_seconds
        last_error = ""
        while time.monotonic() < deadline:
            for child in self.processes:
                if not child.running():
                    raise process.StartError(
                        f"{self.name}: {child.name} exited early:\n{child.log_tail()}"
                    )
            try:
                if self.get("/readyz") == "ok":
                    self._start_controllers()
                    return
            except (OSError, urllib.error.URLError) as error:
                last_error = str(error)
            time.sleep(0.2)
        raise process.StartError(
            f"{self.name}: apiserver not ready after {timeout_seconds}s ({last_error}):\n"
            + self._process("kube-apiserver").log_tail()
        )

    def get(self, path: str, *, timeout_seconds: float = 5.0) -> str:
        """GET a path of the apiserver as the admin user; return the body as text."""
        return self._send(urllib.request.Request(self.server + path), timeout_seconds)  # noqa: S310

    def post(self, path: str, document: Mapping[str, Any], *, timeout_seconds: float = 5.0) -> str:
        """POST a JSON document to a path of the apiserver as the admin user."""
        request = urllib.request.Request(  # noqa: S310 - always https to our own apiserver
            self.server + path,
            data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._send(request, timeout_seconds)

    def _send(self, request: urllib.request.Request, timeout_seconds: float) -> str:
        request.add_header("Authorization", f"Bearer {self.token}")
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        with urllib.request.urlopen(request, timeout=timeout_seconds, context=context) as reply:  # noqa: S310
            body: bytes = reply.read()
        return body.decode()

    def version(self) -> Mapping[str, str]:
        """The apiserver's /version document."""
        document: dict[str, str] = json.loads(self.get("/version"))
        return document

    def stop(self) -> None:
        """Stop every process, newest first, and reap them."""
        for child in reversed(self.processes):
            child.stop()

    def running_pids(self) -> list[int]:
        """Process ids of the cluster's children that have not exited."""
        return [child.pid for child in self.processes if child.running()]


def launch(
    *,
    name: str,
    workdir: pathlib.Path,
    binaries: Mapping[str, pathlib.Path],
    options: ClusterOptions | None = None,
) -> LocalCluster:
    """Start etcd and kube-apiserver without waiting for the apiserver to be ready.

    Call wait_ready() (or start several clusters first, then wait on each): it starts the
    controllers once the apiserver is ready.
    """
    options = options or ClusterOptions()
    workdir.mkdir(parents=True, exist_ok=True)
    certs = pki.write_cluster_pki(directory=workdir / "pki")
    token = secrets.token_urlsafe(32)
    tokens_file = workdir / "tokens.csv"
    tokens_file.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    tokens_file.chmod(0o600)
    audit_policy = workdir / "audit-policy.yaml"
    audit_policy.write_text(yaml.safe_dump(_AUDIT_POLICY))

    etcd_client, etcd_peer, apiserver_port = (process.free_port() for _ in range(3))
    server = f"https://127.0.0.1:{apiserver_port}"
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(path=kubeconfig, name=name, server=server, ca_cert=certs.ca_cert, token=token)

    logs = workdir / "logs"
    children = [
        process.spawn(
            name="etcd",
            argv=_etcd_argv(binaries["etcd"], workdir / "etcd", etcd_client, etcd_peer),
            log_path=logs / "etcd.log",
        )
    ]
    cluster = LocalCluster(
        name=name,
        workdir=workdir,
        server=server,
        token=token,
        kubeconfig=kubeconfig,
        ca_cert=certs.ca_cert,
        processes=children,
        ports=[etcd_client, etcd_peer, apiserver_port],
    )
    try:
        process.wait_for_port(process=children[0], port=etcd_client, timeout_seconds=30)
        apiserver_argv = _apiserver_argv(
            binaries["kube-apiserver"], certs, tokens_file, etcd_client, apiserver_port
        )
        audit_argv = [
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={cluster.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=100",
            "--audit-log-maxbackup=1",
        ]
        children.append(
            process.spawn(
                name="kube-apiserver",
                argv=[*apiserver_argv, *audit_argv, *options.apiserver_flags],
                log_path=logs / "kube-apiserver.log",
            )
        )
        controller_manager_argv = _controller_manager_argv(
            binaries["kube-controller-manager"], certs, kubeconfig
        )
        cluster.controllers.append(
            (
                "kube-controller-manager",
                [*controller_manager_argv, *options.controller_manager_flags],
            )
        )
        if options.scheduler:
            cluster.controllers.append(
                ("kube-scheduler", _scheduler_argv(binaries["kube-scheduler"], kubeconfig))
            )
        for addon in addons.wanted(
            nodes=options.nodes,
            node_allocatable=options.node_allocatable,
            metrics=options.metrics,
            binaries=binaries,
            certs=certs,
            kubeconfig=kubeconfig,
        ):
            cluster.ports.append(addon.port)
            cluster.objects.extend(addon.objects)
            cluster.controllers.append((addon.name, addon.argv))
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start(
    *,
    name: str,
    workdir: pathlib.Path,
    binaries: Mapping[str, pathlib.Path],
    options: ClusterOptions | None = None,
) -> LocalCluster:
    """Launch a cluster and wait until its apiserver is ready."""
    cluster = launch(name=name, workdir=workdir, binaries=binaries, options=options)
    try:
        cluster.wait_ready()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def write_kubeconfig(
    *,
    path: pathlib.Path,
    name: str,
    server: str,
    ca_cert: pathlib.Path,
    token: str,
    user: str = ADMIN_USER,
) -> None:
    """Write a kubeconfig with one cluster, one token user and one current context."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority": str(ca_cert)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _etcd_argv(binary: pathlib.Path, data_dir: pathlib.Path, client: int, peer: int) -> list[str]:
    return [
        str(binary),
        "--name=local",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=local=http://127.0.0.1:{peer}",
        # A throwaway cluster: durability buys nothing and fsync costs seconds per test.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _apiserver_argv(
    binary: pathlib.Path,
    certs: pki.ClusterPKI,
    tokens_file: pathlib.Path,
    etcd_client: int,
    port: int,
) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        # The default reconciler refuses a loopback advertise address.
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={certs.serving_cert}",
        f"--tls-private-key-file={certs.serving_key}",
        f"--client-ca-file={certs.ca_cert}",
        f"--token-auth-file={tokens_file}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={certs.service_account_public_key}",
        f"--service-account-signing-key-file={certs.service_account_key}",
        "--service-cluster-ip-range=10.96.0.0/16",
        # Front proxy: lets aggregated APIs (metrics.k8s.io) trust the apiserver.
        f"--requestheader-client-ca-file={certs.front_proxy_ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        f"--proxy-client-cert-file={certs.front_proxy_client_cert}",
        f"--proxy-client-key-file={certs.front_proxy_client_key}",
        "--enable-aggregator-routing=false",
        "--profiling=false",
    ]


def _controller_manager_argv(
    binary: pathlib.Path, certs: pki.ClusterPKI, kubeconfig: pathlib.Path
) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--secure-port=0",
        "--controllers=*",
        f"--service-account-private-key-file={certs.service_account_key}",
        f"--root-ca-file={certs.ca_cert}",
        # The client default (20 qps) paces Deployments and garbage collection in tests.
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--profiling=false",
    ]


def _scheduler_argv(binary: pathlib.Path, kubeconfig: pathlib.Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--secure-port=0",
        "--profiling=false",
    ]
