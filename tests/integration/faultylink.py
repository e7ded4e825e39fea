"""A TCP relay to a real server that a test can break the way networks break: cut every
connection, freeze them (half-open: nothing passes and nothing closes, as when a peer
vanishes without FIN or RST), or refuse new ones.

It runs its own event loop in a thread, so sync tests (a gateway process behind it) and
async tests use it alike. TLS passes through untouched: clients still verify the real
server's certificate (issued for 127.0.0.1, whatever the port).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import yaml

from imagegen.localcluster import cluster

_CHUNK = 65536


@dataclasses.dataclass(eq=False)
class _Connection:
    sides: tuple[asyncio.StreamWriter, asyncio.StreamWriter]
    frozen: bool = False


class FaultyLink:
    """127.0.0.1:`port` relays to 127.0.0.1:`target_port` until told otherwise."""

    def __init__(self, *, target_port: int) -> None:
        self._target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._refusing = False
        self.accepted = 0
        """Connections accepted and relayed so far."""
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        self._call(self._server.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def cut(self) -> None:
        """Abort every open connection (both ends see a reset)."""
        self._call(self._cut())

    def freeze(self) -> None:
        """Stop relaying on every open connection and keep it open; new connections relay."""
        self._call(self._freeze())

    def refuse(self, refusing: bool) -> None:
        """Close new connections at once (True), or relay them again (False)."""
        self._refusing = refusing

    def open_connections(self) -> int:
        return len(self._connections)

    def _call(self, work: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    async def _cut(self) -> None:
        for connection in list(self._connections):
            for side in connection.sides:
                side.transport.abort()
        self._connections.clear()

    async def _freeze(self) -> None:
        for connection in self._connections:
            connection.frozen = True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        connection = _Connection(sides=(writer, upstream_writer))
        self._connections.add(connection)
        try:
            await asyncio.gather(
                self._pump(reader, upstream_writer, connection),
                self._pump(upstream_reader, writer, connection),
            )
        except (ConnectionError, OSError):
            pass
        finally:
            self._connections.discard(connection)
            for side in connection.sides:
                side.transport.abort()

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        while data := await reader.read(_CHUNK):
            if connection.frozen:
                # Half-open: what arrives is held, nothing goes on, nothing closes.
                await asyncio.Event().wait()
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()


@contextlib.contextmanager
def link_to(
    target: cluster.LocalCluster, *, workdir: pathlib.Path, kubeconfig: pathlib.Path | None = None
) -> Iterator[LinkedCluster]:
    """A FaultyLink to the cluster's apiserver, and `kubeconfig` (by default the cluster's
    admin one) rewritten to go through it: same user, same CA."""
    link = FaultyLink(target_port=int(target.server.rsplit(":", 1)[1]))
    link.start()
    try:
        config = yaml.safe_load((kubeconfig or target.kubeconfig).read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = f"https://127.0.0.1:{link.port}"
        through = workdir / "kubeconfig-through-link"
        through.write_text(yaml.safe_dump(config))
        through.chmod(0o600)
        yield LinkedCluster(link=link, kubeconfig=through)
    finally:
        link.stop()


@dataclasses.dataclass(frozen=True, kw_only=True)
class LinkedCluster:
    link: FaultyLink
    kubeconfig: pathlib.Path
    """Admin access to the cluster, through the link."""
