"""Workers as the Deployment runs them: `imagegen worker` processes of their own, pointed
at the test's redis-server, probed over HTTP and stopped by signals as the kubelet does."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from prometheus_client import parser

from imagegen.localcluster import process

START_SECONDS = 30.0
EXIT_SECONDS = 30.0


@dataclasses.dataclass(kw_only=True)
class WorkerProcess:
    """One running `imagegen worker` and its probe port."""

    child: process.ManagedProcess
    port: int

    @property
    def pid(self) -> int:
        return self.child.pid

    async def probe(self, path: str) -> tuple[int, str]:
        """Status and body of GET /healthz or /readyz; (0, error) when nothing answers."""
        return await asyncio.to_thread(_get, f"http://127.0.0.1:{self.port}{path}")

    async def wait_until(self, path: str, *, status: int = 200) -> None:
        """Wait until the probe at `path` answers `status`; fail if the worker exits."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if not self.child.running():
                raise AssertionError(f"worker exited early:\n{self.child.log_tail()}")
            if (await self.probe(path))[0] == status:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{path} never answered {status}:\n{self.child.log_tail()}")

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of the worker's /metrics, by name and labels; 0 when it has none."""
        status, body = await self.probe("/metrics")
        assert status == 200, body
        for family in parser.text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    return float(sample.value)
        return 0.0

    def signal(self, signum: signal.Signals) -> None:
        """Send signum to the worker alone (kill -9 is SIGKILL)."""
        self.child.popen.send_signal(signum)

    async def exit_code(self) -> int:
        """Wait for the worker to exit and return its code."""
        try:
            return await asyncio.to_thread(self.child.popen.wait, EXIT_SECONDS)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"worker still running:\n{self.child.log_tail()}") from error

    def log(self) -> str:
        return self.child.log_path.read_text(errors="replace")


@dataclasses.dataclass(kw_only=True)
class Workers:
    """Starts workers of one pool against one Redis and storage folder; stops them all."""

    redis_url: str
    storage: pathlib.Path
    logs: pathlib.Path
    tenant: str = "acme"
    region: str = "us-east"
    log_format: str = "text"
    started: list[WorkerProcess] = dataclasses.field(default_factory=list)

    async def start(
        self, *args: str, env: dict[str, str] | None = None, ready: bool = True
    ) -> WorkerProcess:
        """A worker of the tenant's dedicated pool with `args` added; waits until /readyz
        says 200 (or, when not `ready`, until /healthz does)."""
        port = process.free_port()
        argv: Sequence[str] = [
            sys.executable, "-m", "imagegen", "-v", "--log-format", self.log_format, "worker",
            "--region", self.region, "--tenant", self.tenant,
            "--redis-url", self.redis_url,
            "--storage-dir", str(self.storage),
            "--port", str(port),
            *args,
        ]  # fmt: skip
        name = f"worker-{len(self.started)}"
        child = process.spawn(
            name=name, argv=list(argv), log_path=self.logs / f"{name}.log", env=env
        )
        worker = WorkerProcess(child=child, port=port)
        self.started.append(worker)
        await worker.wait_until("/readyz" if ready else "/healthz")
        return worker

    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL after a bounded wait; every worker reaped."""
        for worker in self.started:
            worker.child.stop(grace_seconds=10)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (loopback http)
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)
