"""The gateway as a user runs it: `imagegen gateway` in a process of its own, under the
ServiceAccount token that manifests/rbac/gateway.yaml grants, never as cluster admin."""

from __future__ import annotations

import dataclasses
import pathlib

from imagegen.localcluster import cluster, gateway, operatorsetup, process

RBAC = pathlib.Path(__file__).resolve().parents[2] / "manifests" / "rbac" / "gateway.yaml"


def service_account_kubeconfig(
    *, management: cluster.LocalCluster, workdir: pathlib.Path
) -> pathlib.Path:
    """A kubeconfig of the gateway's ServiceAccount, its RBAC (manifests/rbac) applied."""
    return operatorsetup.service_account_kubeconfig(
        target=management, manifest=RBAC, workdir=workdir, account=gateway.SERVICE_ACCOUNT
    )


@dataclasses.dataclass(kw_only=True)
class GatewayProcess:
    """A running `imagegen gateway` on a free loopback port."""

    kubeconfig: pathlib.Path
    redis_url: str
    workdir: pathlib.Path
    images_dir: pathlib.Path | None = None
    webhook_allowlist: tuple[str, ...] = ()
    extra_settings: dict[str, object] = dataclasses.field(default_factory=dict)
    """More settings (gateway/settings.py), such as each region's object store."""
    log_format: str = "json"
    command_prefix: tuple[str, ...] = ()
    """A command the gateway runs under, such as `unshare` giving it a resolv.conf."""
    child: process.ManagedProcess | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the gateway and wait until /readyz says it has the key index and Tenants."""
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": process.free_port(),
            "kubeconfig": str(self.kubeconfig),
            "redis": {"url": self.redis_url},
            "webhook_allowlist": list(self.webhook_allowlist),
        }
        if self.images_dir is not None:
            settings["images_dir"] = str(self.images_dir)
        settings.update(self.extra_settings)
        started = gateway.launch(
            settings=settings,
            workdir=self.workdir,
            log_format=self.log_format,
            command_prefix=self.command_prefix,
        )
        self.child, self.port = started.child, started.port

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(grace_seconds=15)

    def log(self) -> str:
        assert self.child is not None
        return self.child.log_path.read_text(errors="replace")
