"""Test plumbing in front of a real store: a loopback TCP proxy that stands in for the
link between a worker and its store, slow or faulty, so that a test can kill a worker
while its PUT is on the wire, or see what the store makes of a body damaged on the way.

The proxy takes whatever the client sends at once, and forwards request bodies to the
server at `bytes_per_second` (request lines and headers go at once, and the answers
come back at full speed). It reads HTTP/1.1 only as far as it must to see where each
body starts and ends (Content-Length); the bytes go to the server unchanged, unless
`corrupt` flips a bit in the middle of each body. With `tls` it speaks https to the
client and plain http to the server, as a TLS-terminating load balancer in front of a
store does. When the client's connection ends, the server's ends too, at once: what the
proxy has not forwarded yet is dropped, as a link drops what it carries when a worker
(its pod, its node) goes away. The server then sees a body cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl

PIECE_BYTES = 1024
"""Body bytes forwarded at a time."""
_HEAD_END = b"\r\n\r\n"


@dataclasses.dataclass
class Upload:
    """One request body on its way to the server."""

    method: str
    path: str
    total: int
    sent: int = 0


class _Inbox:
    """What the client has sent and the proxy not forwarded, and whether it has gone."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.gone = False
        self._changed = asyncio.Event()

    async def fill(self, reader: asyncio.StreamReader) -> None:
        """Take the client's bytes as they come, until it closes."""
        try:
            while chunk := await reader.read(64 * 1024):
                self.data += chunk
                self._changed.set()
        except ConnectionError:
            pass
        finally:
            self.gone = True
            self._changed.set()

    async def head(self) -> bytes:
        """The next request line and headers; ConnectionError once the client has gone."""
        while (end := self.data.find(_HEAD_END)) < 0:
            await self._wait()
        head = bytes(self.data[: end + len(_HEAD_END)])
        del self.data[: len(head)]
        return head

    async def piece(self, size: int) -> bytes:
        """Up to `size` bytes of a body; ConnectionError once the client has gone."""
        while not self.data:
            await self._wait()
        piece = bytes(self.data[:size])
        del self.data[: len(piece)]
        return piece

    async def _wait(self) -> None:
        if self.gone:
            raise ConnectionError("the client has gone")
        self._changed.clear()
        await self._changed.wait()


@dataclasses.dataclass(kw_only=True)
class StoreProxy:
    """Forwards to 127.0.0.1:`upstream_port`, request bodies at `bytes_per_second` (None:
    as fast as they come)."""

    upstream_port: int
    bytes_per_second: float | None = None
    corrupt: bool = False
    """Flip one bit of the middle byte of every request body."""
    tls: ssl.SSLContext | None = None
    """Serve https to the client with this context."""
    port: int = 0
    in_flight: list[Upload] = dataclasses.field(default_factory=list)
    """Bodies begun and not finished, on the connections open now."""
    cut_off: list[Upload] = dataclasses.field(default_factory=list)
    """Bodies whose client went away before the proxy had forwarded them whole."""
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, host="127.0.0.1", port=0, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_out.close()
            self._tasks.discard(task)
            return
        inbox = _Inbox()
        # Whichever side ends its connection ends the other's: a client gone mid-body
        # leaves the server a short body, a server gone makes the client reconnect.
        directions = (
            asyncio.create_task(inbox.fill(client_in)),
            asyncio.create_task(self._requests(inbox, server_out)),
            asyncio.create_task(_copy(server_in, client_out)),
        )
        try:
            await asyncio.wait(directions[1:], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for writer in (server_out, client_out):
                writer.close()
            for direction in directions:
                direction.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            self._tasks.discard(task)

    async def _requests(self, inbox: _Inbox, writer: asyncio.StreamWriter) -> None:
        """Forward requests one after another until the client has gone."""
        with contextlib.suppress(ConnectionError):
            while True:
                head = await inbox.head()
                writer.write(head)
                await writer.drain()
                method, path = head.split(b" ", 2)[:2]
                upload = Upload(method=method.decode(), path=path.decode(), total=_length(head))
                self.in_flight.append(upload)
                try:
                    await self._body(inbox, writer, upload)
                except ConnectionError:
                    self.cut_off.append(upload)
                    raise
                finally:
                    self.in_flight.remove(upload)

    async def _body(self, inbox: _Inbox, writer: asyncio.StreamWriter, upload: Upload) -> None:
        middle = upload.total // 2
        while upload.sent < upload.total:
            if inbox.gone:
                raise ConnectionError("the client went away mid-body")
            piece = await inbox.piece(min(PIECE_BYTES, upload.total - upload.sent))
            if self.corrupt and upload.sent <= middle < upload.sent + len(piece):
                damaged = bytearray(piece)
                damaged[middle - upload.sent] ^= 0x01
                piece = bytes(damaged)
            writer.write(piece)
            await writer.drain()
            upload.sent += len(piece)
            if self.bytes_per_second is not None:
                await asyncio.sleep(len(piece) / self.bytes_per_second)


def _length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            raise AssertionError("the proxy frames Content-Length bodies only")
    return 0


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
