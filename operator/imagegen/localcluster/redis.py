"""A real redis-server on a free loopback port with a throwaway data folder."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import time
from collections.abc import Sequence

from imagegen.localcluster import pki, process


@dataclasses.dataclass(kw_only=True)
class LocalRedis:
    """A running redis-server and its URL."""

    port: int
    child: process.ManagedProcess

    @property
    def url(self) -> str:
        """redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        """True when the server answers PING (plain RESP, no client library needed); a
        server with a password answers too, by refusing it."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def stop(self) -> None:
        """Stop and reap the server."""
        self.child.stop()

    def kill(self) -> None:
        """SIGKILL the server, as a crashed node: no shutdown, nothing flushed."""
        if self.child.running():
            os.killpg(self.child.pid, signal.SIGKILL)
            self.child.popen.wait(timeout=10)

    def restart(self, *, timeout_seconds: float = 20.0) -> None:
        """Start the stopped server again on the same port (its data is gone: no disk)."""
        self.child = process.spawn(
            name=self.child.name, argv=self.child.argv, log_path=self.child.log_path
        )
        _wait_for_ping(self, timeout_seconds=timeout_seconds)


def start(
    *,
    workdir: pathlib.Path,
    timeout_seconds: float = 20.0,
    port: int | None = None,
    extra_args: Sequence[str] = (),
) -> LocalRedis:
    """Start redis-server in workdir (on `port`, or a free one) and wait until it answers
    PING; `extra_args` are more `--name value` settings (a cluster node's, say)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise process.StartError(
            "redis-server is not on PATH; `make test` installs it (apt-get install redis-server)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or process.free_port()
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        # Tests want a clean server each time and no disk writes.
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        *extra_args,
    ]
    server = LocalRedis(
        port=port,
        child=process.spawn(name="redis-server", argv=argv, log_path=workdir / "redis.log"),
    )
    _wait_for_ping(server, timeout_seconds=timeout_seconds)
    return server


@dataclasses.dataclass(kw_only=True)
class LocalTlsRedis:
    """A redis-server that serves TLS with a certificate of a private CA, and asks for a
    password; its plain port stays open on loopback for the readiness check alone."""

    server: LocalRedis
    tls_port: int
    pki: pki.ServingPKI
    password: str

    @property
    def url(self) -> str:
        """rediss:// URL of the server (no credentials: the password is separate)."""
        return f"rediss://127.0.0.1:{self.tls_port}/0"

    def stop(self) -> None:
        """Stop and reap the server."""
        self.server.stop()


def start_tls(*, workdir: pathlib.Path, password: str) -> LocalTlsRedis:
    """Start redis-server in workdir with TLS from a fresh private CA and `password`."""
    certs = pki.write_serving_pki(directory=workdir / "pki", common_name="redis")
    tls_port = process.free_port()
    server = start(
        workdir=workdir,
        extra_args=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certs.cert),
            "--tls-key-file", str(certs.key),
            "--tls-ca-cert-file", str(certs.ca_cert),
            # Clients prove themselves by password; they need no certificate of their own.
            "--tls-auth-clients", "no",
            "--requirepass", password,
        ],
    )  # fmt: skip
    return LocalTlsRedis(server=server, tls_port=tls_port, pki=certs, password=password)


def _wait_for_ping(server: LocalRedis, *, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not server.ping():
        if not server.child.running() or time.monotonic() > deadline:
            server.stop()
            raise process.StartError(f"redis-server did not start:\n{server.child.log_tail()}")
        time.sleep(0.05)
