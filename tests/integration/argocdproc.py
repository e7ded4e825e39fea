"""A real Argo CD against the test management cluster: its repo-server,
application-controller and applicationset-controller as local processes of the one
`argocd` binary, a redis-server for their cache, and a git repository served by
`git daemon` on loopback."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
from typing import Any

import lightkube
from lightkube import codecs
from lightkube.generic_resource import create_namespaced_resource

from imagegen.localcluster import cluster, install, process, redis

NAMESPACE = "argocd"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
MODULE = "github.com/argoproj/argo-cd/v3"
Application = create_namespaced_resource(
    group="argoproj.io", version="v1alpha1", kind="Application", plural="applications"
)
AppProject = create_namespaced_resource(
    group="argoproj.io", version="v1alpha1", kind="AppProject", plural="appprojects"
)
ApplicationSet = create_namespaced_resource(
    group="argoproj.io", version="v1alpha1", kind="ApplicationSet", plural="applicationsets"
)


def module_dir(source_dir: pathlib.Path) -> pathlib.Path:
    """Argo CD's module in the Go module cache: its CRDs and wrapper scripts are read from
    there, never copied into this repository."""
    result = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", MODULE],
        cwd=source_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "GOTOOLCHAIN": "go1.27.3"},
    )
    return pathlib.Path(result.stdout.strip())


@dataclasses.dataclass(kw_only=True)
class GitRepo:
    """A git repository served read-only by `git daemon` on a loopback port."""

    path: pathlib.Path
    daemon: process.ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}/{self.path.name}"

    def commit(self, files: dict[str, str], message: str) -> None:
        """Write files (relative path -> text; empty text deletes) and commit them."""
        for relative, text in files.items():
            target = self.path / relative
            if text:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            else:
                target.unlink()
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)

    def _git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.path, check=True, timeout=30)


def serve_repo(workdir: pathlib.Path) -> GitRepo:
    """An empty repository with one commit on main, served by git daemon."""
    base = workdir / "git"
    path = base / "tenants.git"
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True, timeout=30)
    for key, value in (("user.name", "platform"), ("user.email", "platform@example.com")):
        subprocess.run(["git", "config", key, value], cwd=path, check=True, timeout=30)
    (path / "README").write_text("Tenants of the test platform.\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, timeout=30)
    subprocess.run(["git", "commit", "-q", "-m", "start"], cwd=path, check=True, timeout=30)
    port = process.free_port()
    daemon = process.spawn(
        name="git-daemon",
        argv=[
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        log_path=workdir / "logs" / "git-daemon.log",
    )
    process.wait_for_port(process=daemon, port=port, timeout_seconds=30)
    return GitRepo(path=path, daemon=daemon, port=port)


@dataclasses.dataclass(kw_only=True)
class ArgoCD:
    """Argo CD's controllers, running; stop() ends them all."""

    processes: list[process.ManagedProcess]
    redis: redis.LocalRedis

    def log_tail(self, component: str, *, lines: int = 30) -> str:
        """The end of one component's log (say "argocd-application-controller"), for
        failure messages."""
        (found,) = (child for child in self.processes if child.name == component)
        return f"\n--- {component} log, last {lines} lines:\n{found.log_tail(lines=lines)}"

    def stop(self) -> None:
        for child in reversed(self.processes):
            child.stop()
        self.redis.stop()


def install_argocd(
    *,
    client: lightkube.Client,
    target: cluster.LocalCluster,
    module: pathlib.Path,
    health: dict[str, str],
) -> None:
    """Argo CD's CRDs, namespace, settings (with `health`, our kinds' health checks, in
    argocd-cm), default project and the target cluster."""
    install.apply_files(client=client, paths=(module / "manifests" / "crds").glob("*-crd.yaml"))
    install.wait_crds_established(
        client=client,
        names=[
            "applications.argoproj.io",
            "appprojects.argoproj.io",
            "applicationsets.argoproj.io",
        ],
        timeout_seconds=60,
    )
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        _config_map("argocd-cm", {"timeout.reconciliation": "10s", **health}),
        _config_map("argocd-rbac-cm", {}),
        _config_map("argocd-cmd-params-cm", {}),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "argocd-secret", "namespace": NAMESPACE, "labels": PART_OF},
            "stringData": {"server.secretkey": base64.b64encode(os.urandom(32)).decode()},
        },
        cluster_secret(name="management", target=target),
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": "default", "namespace": NAMESPACE},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        },
    ]
    for obj in objects:
        apply(client, obj)


def apply(client: lightkube.Client, obj: dict[str, Any]) -> None:
    """Server-side apply obj, as whoever runs Argo CD would `kubectl apply` it."""
    client.apply(codecs.from_dict(obj), field_manager="argocd-test", force=True)


def cluster_secret(
    *, name: str, target: cluster.LocalCluster, server: str | None = None
) -> dict[str, Any]:
    """The Secret registering `target` in Argo CD as the cluster `name`, which
    Applications name as their destination; `server` points it elsewhere (the address a
    cluster is reached at is the key Argo CD looks it up by)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "cluster"},
        },
        "stringData": {
            "name": name,
            "server": server or target.server,
            "config": json.dumps(
                {
                    "bearerToken": target.token,
                    "tlsClientConfig": {
                        "caData": base64.b64encode(target.ca_cert.read_bytes()).decode()
                    },
                }
            ),
        },
    }


def _config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": PART_OF},
        "data": data,
    }


def start(
    *,
    binary: pathlib.Path,
    module: pathlib.Path,
    target: cluster.LocalCluster,
    workdir: pathlib.Path,
) -> ArgoCD:
    """Start a redis-server, the repo-server, the application-controller and the
    applicationset-controller."""
    cache = redis.start(workdir=workdir / "redis")
    # The repo-server runs these on every manifest generation; from the module, on PATH.
    wrappers = workdir / "bin"
    wrappers.mkdir(parents=True, exist_ok=True)
    for script in ("git-verify-wrapper.sh", "gpg-wrapper.sh"):
        shutil.copy(module / "hack" / script, wrappers / script)
        (wrappers / script).chmod(0o755)
    env = {
        "PATH": f"{wrappers}:{os.environ.get('PATH', '')}",
        "HOME": str(workdir),
        "ARGOCD_GPG_ENABLED": "false",
        "ARGOCD_EXEC_TIMEOUT": "60s",
    }
    started: list[process.ManagedProcess] = []

    def spawn(component: str, argv: list[str], **extra_env: str) -> process.ManagedProcess:
        child = process.spawn(
            name=component,
            argv=[str(binary), *argv],
            log_path=workdir / "logs" / f"{component}.log",
            env={**env, **extra_env, "ARGOCD_BINARY_NAME": component},
        )
        started.append(child)
        return child

    port = {
        use: process.free_port()
        for use in ("repo", "repo-metrics", "metrics", "appset-metrics", "probe", "webhook")
    }
    repo_server = f"127.0.0.1:{port['repo']}"
    try:
        spawned = spawn(
            "argocd-repo-server",
            [
                "--address=127.0.0.1",
                f"--port={port['repo']}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={port['repo-metrics']}",
                # Plain gRPC on loopback; its default client CA path only goes with TLS.
                "--disable-tls",
                "--client-ca-path=",
                f"--redis=127.0.0.1:{cache.port}",
                # Where `main` points is cached for 3 minutes by default; a commit must
                # be seen within seconds here.
                "--revision-cache-expiration=5s",
                "--loglevel=info",
            ],
        )
        process.wait_for_port(process=spawned, port=port["repo"], timeout_seconds=120)
        spawn(
            "argocd-application-controller",
            [
                f"--kubeconfig={target.kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--repo-server={repo_server}",
                "--repo-server-plaintext",
                f"--redis=127.0.0.1:{cache.port}",
                f"--metrics-port={port['metrics']}",
                "--app-resync=10",
                "--status-processors=2",
                "--operation-processors=2",
                "--self-heal-timeout-seconds=2",
                "--loglevel=info",
            ],
        )
        spawned = spawn(
            "argocd-applicationset-controller",
            [
                f"--kubeconfig={target.kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--argocd-repo-server={repo_server}",
                "--repo-server-plaintext",
                # Its three listeners default to :8080, :8081 and :7000 on every address,
                # which other processes on the machine may hold: free loopback ports.
                f"--metrics-addr=127.0.0.1:{port['appset-metrics']}",
                f"--probe-addr=127.0.0.1:{port['probe']}",
                f"--webhook-addr=127.0.0.1:{port['webhook']}",
                "--loglevel=info",
            ],
            # Its manager finds the cluster through controller-runtime, which reads
            # KUBECONFIG and not the --kubeconfig flag (that one gives the namespace).
            KUBECONFIG=str(target.kubeconfig),
        )
        # The probe listens once its cluster informer has synced and the manager runs.
        process.wait_for_port(process=spawned, port=port["probe"], timeout_seconds=120)
    except BaseException:
        for child in reversed(started):
            child.stop()
        cache.stop()
        raise
    return ArgoCD(processes=started, redis=cache)
