"""A TCP proxy on a loopback port that a test can cut: one client (the operator) reaches a
server (a region's Redis) through it while others reach the server directly, so the test
can take the server away from that client alone, as a network partition would."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from imagegen.localcluster import process

START_SECONDS = 10.0
_CHUNK = 65536


class CuttableProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port` on an event loop of its own
    thread. While cut, every open connection is reset and new ones are reset as soon as
    they are accepted: the client sees a connection error at once, as from a closed port."""

    def __init__(self, *, target_port: int) -> None:
        self.target_port = target_port
        self.port = process.free_port()
        self._cut = False
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """redis:// URL of the proxy, for a client that must go through it."""
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> CuttableProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=START_SECONDS)
        self._loop.close()

    def cut(self) -> None:
        """Reset every connection through the proxy and refuse new ones."""
        self._call(self._set_cut(True))

    def restore(self) -> None:
        """Forward new connections again."""
        self._call(self._set_cut(False))

    def _call(self, coroutine: object) -> None:
        assert asyncio.iscoroutine(coroutine)
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=START_SECONDS)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        await self._set_cut(True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _set_cut(self, cut: bool) -> None:
        self._cut = cut
        if cut:
            for writer in list(self._open):
                writer.transport.abort()
            self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, upstream_writer))
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for end in (writer, upstream_writer):
                self._open.discard(end)
                end.transport.abort()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side closes or is reset; the other direction is then reset too."""
    with contextlib.suppress(OSError):
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()
