"""`imagegen operator` as a user runs it: it starts, answers its liveness probe, and
shuts down cleanly on SIGTERM."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

from imagegen.localcluster import cluster, process


def wait_for_liveness(url: str, child: subprocess.Popen[bytes], timeout_seconds: float) -> int:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        assert child.poll() is None, "the operator exited before it became live"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback
                status: int = reply.status
                return status
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no answer from {url} within {timeout_seconds}s")


def test_operator_starts_serves_liveness_and_exits_cleanly_on_sigterm(
    management: cluster.LocalCluster, crds_installed: None, tmp_path: pathlib.Path
) -> None:
    port = process.free_port()
    log_path = tmp_path / "operator.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagegen",
                "operator",
                "--kubeconfig",
                str(management.kubeconfig),
                "--liveness",
                f"http://127.0.0.1:{port}/healthz",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for_liveness(f"http://127.0.0.1:{port}/healthz", child, 60) == 200
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    output = log_path.read_text()
    assert "imagegen operator starting" in output
    assert "imagegen operator stopped" in output
    assert "Traceback" not in output
    assert management.token not in output, "the admin token leaked into the logs"
