"""The gateway as the local stack runs it: `imagegen gateway` in a process of its own,
under the ServiceAccount that manifests/rbac/gateway.yaml grants (never the admin token),
with the management Redis it keeps rate limits, idempotency records and tickets in."""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import yaml

from imagegen.localcluster import cluster, operatorsetup, process

SERVICE_ACCOUNT = "imagegen-gateway"
START_SECONDS = 90.0


@dataclasses.dataclass(kw_only=True)
class LocalGateway:
    """A running `imagegen gateway` on a loopback port."""

    port: int
    child: process.ManagedProcess

    @property
    def url(self) -> str:
        """Base URL of the batch API (the UI is under /ui/)."""
        return f"http://127.0.0.1:{self.port}"


def start(
    *,
    management: cluster.LocalCluster,
    rbac: pathlib.Path,
    redis_url: str,
    workdir: pathlib.Path,
    images_dir: pathlib.Path | None = None,
    settings: dict[str, Any] | None = None,
    log_format: str = "text",
) -> LocalGateway:
    """Apply the gateway's RBAC, start the gateway as its ServiceAccount and wait until
    /readyz says it has the key index, the Tenants and Redis."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = operatorsetup.service_account_kubeconfig(
        target=management, manifest=rbac, workdir=workdir, account=SERVICE_ACCOUNT
    )
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": process.free_port(),
        "kubeconfig": str(kubeconfig),
        "redis": {"url": redis_url},
        **({"images_dir": str(images_dir.resolve())} if images_dir else {}),
        **(settings or {}),
    }
    return launch(settings=config, workdir=workdir, log_format=log_format)


def launch(
    *,
    settings: dict[str, Any],
    workdir: pathlib.Path,
    log_format: str,
    command_prefix: Sequence[str] = (),
) -> LocalGateway:
    """Start `imagegen gateway` with this settings file (host 127.0.0.1 and a port set)
    and wait until it is ready; stopped again if it is not. `command_prefix` runs it
    through another command (tests: `unshare` with a resolv.conf of their own)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # The Redis URL may carry a password: a file readable by this user alone, no flag.
    config_path = workdir / "gateway.yaml"
    config_path.touch(mode=0o600)
    config_path.write_text(yaml.safe_dump(settings))
    argv = [sys.executable, "-m", "imagegen", "--log-format", log_format, "gateway"]
    child = process.spawn(
        name="gateway",
        argv=[*command_prefix, *argv, "--config", str(config_path)],
        log_path=workdir / "gateway.log",
    )
    running = LocalGateway(port=int(settings["port"]), child=child)
    try:
        wait_ready(running, timeout_seconds=START_SECONDS)
    except BaseException:
        child.stop()
        raise
    return running


def wait_ready(gateway: LocalGateway, *, timeout_seconds: float) -> None:
    """Wait until /readyz answers 200; StartError if the gateway exits or times out."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not gateway.child.running():
            raise process.StartError(f"gateway exited:\n{gateway.child.log_tail()}")
        if _status(f"{gateway.url}/readyz") == 200:
            return
        time.sleep(0.2)
    raise process.StartError(
        f"gateway not ready in {timeout_seconds}s:\n{gateway.child.log_tail()}"
    )


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (loopback http)
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
