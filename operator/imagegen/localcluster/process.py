"""Child processes of the local stack: started with their output in a log file, stopped
with SIGTERM, then SIGKILL after a bounded wait, and always reaped."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import time

# kube-apiserver was seen to outlive SIGTERM by more than 15 s while draining watches;
# the local stack holds no state worth a graceful drain, so it gets a short grace.
DEFAULT_STOP_GRACE_SECONDS = 5.0


class StartError(RuntimeError):
    """A child process exited or did not become ready; the message has its log's tail."""


@dataclasses.dataclass(kw_only=True)
class ManagedProcess:
    """One child process and the log file it writes."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: pathlib.Path

    @property
    def pid(self) -> int:
        """The process id (also its process-group id: it leads its own session)."""
        return self.popen.pid

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, *, lines: int = 30) -> str:
        """The last lines of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS) -> None:
        """SIGTERM the process group, SIGKILL it after grace_seconds, and reap it."""
        if self.running():
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=grace_seconds)
        # Children the process may have left in its group go too.
        _signal_group(self.pid, signal.SIGKILL)


def spawn(
    *, name: str, argv: list[str], log_path: pathlib.Path, env: dict[str, str] | None = None
) -> ManagedProcess:
    """Start argv in a session of its own, stdout and stderr appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    return ManagedProcess(name=name, argv=argv, popen=popen, log_path=log_path)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` (a loopback address) that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(*, process: ManagedProcess, port: int, timeout_seconds: float) -> None:
    """Wait until process listens on port; raise StartError if it exits or times out."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not process.running():
            raise StartError(f"{process.name} exited early:\n{process.log_tail()}")
        if port_open(port):
            return
        time.sleep(0.05)
    raise StartError(f"{process.name} did not listen on {port} within {timeout_seconds}s")


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
