"""The operator as a user runs it: `imagegen operator` in a process of its own, under
the ServiceAccount credentials that manifests/rbac grants, never as cluster admin."""

from __future__ import annotations

import dataclasses
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

from imagegen.localcluster import operatorsetup, process


@dataclasses.dataclass(kw_only=True)
class OperatorProcess:
    """A running `imagegen operator`, restartable."""

    setup: operatorsetup.OperatorSetup
    log_path: pathlib.Path
    child: subprocess.Popen[bytes] | None = None
    port: int = 0
    metrics_port: int = 0
    log_format: str = "json"
    """JSON lines, as in production log pipelines; tests read them with `log_lines`."""

    def start(self) -> None:
        """Start the operator and wait until its liveness probe answers."""
        self.port = process.free_port()
        # A free port each start: the default 9090 would collide with any other operator.
        self.metrics_port = process.free_port()
        argv = [
            sys.executable, "-m", "imagegen", "--log-format", self.log_format, "operator",
            "--config", str(self.setup.config_path),
            "--kubeconfig", str(self.setup.kubeconfig),
            "--liveness", f"http://127.0.0.1:{self.port}/healthz",
            "--metrics", f"http://127.0.0.1:{self.metrics_port}/metrics",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.child.poll() is not None:
                raise AssertionError(f"operator exited:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.liveness_url, timeout=2) as reply:  # noqa: S310
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"operator not live within 60s:\n{self.log()[-3000:]}")

    @property
    def metrics_address(self) -> str:
        """host:port of its /metrics, as Prometheus targets are written."""
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def liveness_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def stop(self, *, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop the operator with sig; return its exit code."""
        assert self.child is not None
        if self.child.poll() is None:
            self.child.send_signal(sig)
        try:
            return self.child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            return self.child.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
