"""The gateway as a user runs it: `imagegen gateway` in a process of its own, under the
ServiceAccount token that manifests/rbac/gateway.yaml grants, never as cluster admin."""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time
import urllib.error
import urllib.request

import yaml

from imagegen.localcluster import process

START_SECONDS = 90.0


@dataclasses.dataclass(kw_only=True)
class GatewayProcess:
    """A running `imagegen gateway` on a free loopback port."""

    kubeconfig: pathlib.Path
    redis_url: str
    workdir: pathlib.Path
    images_dir: pathlib.Path | None = None
    webhook_allowlist: tuple[str, ...] = ()
    log_format: str = "json"
    settings: dict[str, object] = dataclasses.field(default_factory=dict)
    """More settings for its configuration file (limits a test wants small)."""
    child: process.ManagedProcess | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the gateway and wait until /readyz says it has the key index and Tenants."""
        self.port = process.free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "gateway.yaml"
        settings = {
            "host": "127.0.0.1",
            "port": self.port,
            "kubeconfig": str(self.kubeconfig),
            "redis_url": self.redis_url,
            "webhook_allowlist": list(self.webhook_allowlist),
        }
        if self.images_dir is not None:
            settings["images_dir"] = str(self.images_dir)
        settings.update(self.settings)
        config.write_text(yaml.safe_dump(settings))
        self.child = process.spawn(
            name="gateway",
            argv=[
                sys.executable,
                "-m",
                "imagegen",
                "--log-format",
                self.log_format,
                "gateway",
                "--config",
                str(config),
            ],
            log_path=self.workdir / "gateway.log",
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if not self.child.running():
                raise AssertionError(f"gateway exited:\n{self.child.log_tail()}")
            if _status(f"{self.url}/readyz") == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"gateway not ready in {START_SECONDS}s:\n{self.child.log_tail()}")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(grace_seconds=15)

    def log(self) -> str:
        assert self.child is not None
        return self.child.log_path.read_text(errors="replace")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (loopback http)
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
