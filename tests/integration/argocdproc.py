"""A real Argo CD against the test management cluster: its repo-server and
application-controller as local processes of the one `argocd` binary, a redis-server for
their cache, and a git repository served by `git daemon` on loopback."""

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
        names=["applications.argoproj.io", "appprojects.argoproj.io"],
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
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "management",
                "namespace": NAMESPACE,
                "labels": {"argocd.argoproj.io/secret-type": "cluster"},
            },
            "stringData": {
                "name": "management",
                "server": target.server,
                "config": json.dumps(
                    {
                        "bearerToken": target.token,
                        "tlsClientConfig": {
                            "caData": base64.b64encode(target.ca_cert.read_bytes()).decode()
                        },
                    }
                ),
            },
        },
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
        client.apply(codecs.from_dict(obj), field_manager="argocd-test", force=True)


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
    """Start a redis-server, the repo-server and the application-controller."""
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
    repo_port, repo_metrics, controller_metrics = (process.free_port() for _ in range(3))
    started: list[process.ManagedProcess] = []
    try:
        repo_server = process.spawn(
            name="argocd-repo-server",
            argv=[
                str(binary),
                "--address=127.0.0.1",
                f"--port={repo_port}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={repo_metrics}",
                # Plain gRPC on loopback; its default client CA path only goes with TLS.
                "--disable-tls",
                "--client-ca-path=",
                f"--redis=127.0.0.1:{cache.port}",
                # Where `main` points is cached for 3 minutes by default; a commit must
                # be seen within seconds here.
                "--revision-cache-expiration=5s",
                "--loglevel=info",
            ],
            log_path=workdir / "logs" / "argocd-repo-server.log",
            env={**env, "ARGOCD_BINARY_NAME": "argocd-repo-server"},
        )
        started.append(repo_server)
        process.wait_for_port(process=repo_server, port=repo_port, timeout_seconds=120)
        controller = process.spawn(
            name="argocd-application-controller",
            argv=[
                str(binary),
                f"--kubeconfig={target.kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--repo-server=127.0.0.1:{repo_port}",
                "--repo-server-plaintext",
                f"--redis=127.0.0.1:{cache.port}",
                f"--metrics-port={controller_metrics}",
                "--app-resync=10",
                "--status-processors=2",
                "--operation-processors=2",
                "--self-heal-timeout-seconds=2",
                "--loglevel=info",
            ],
            log_path=workdir / "logs" / "argocd-application-controller.log",
            env={**env, "ARGOCD_BINARY_NAME": "argocd-application-controller"},
        )
        started.append(controller)
    except BaseException:
        for child in reversed(started):
            child.stop()
        cache.stop()
        raise
    return ArgoCD(processes=started, redis=cache)
