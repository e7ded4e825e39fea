"""A webhook receiver on 127.0.0.1 for tests: answers from a script, records what came."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from types import TracebackType

from aiohttp import web

from imagegen.localcluster import process


@dataclasses.dataclass(frozen=True, kw_only=True)
class Answer:
    """What the receiver answers to one request."""

    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_seconds: float = 0.0
    """How long to wait before answering: a slow receiver."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Received:
    """One request as the receiver saw it, with the status it answered."""

    headers: dict[str, str]
    body: bytes
    at: float
    """time.time() when the request arrived."""
    status: int


class Receiver:
    """Answers with `script` in order, then 200; records every request it answered."""

    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or process.free_port(host)
        self.script: list[Answer] = []
        self.received: list[Received] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks/imagegen"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/imagegen", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ok(self) -> list[Received]:
        """Requests answered with a 2xx: the deliveries."""
        return [r for r in self.received if 200 <= r.status < 300]

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        answer = self.script.pop(0) if self.script else Answer()
        if answer.delay_seconds:
            await asyncio.sleep(answer.delay_seconds)
        self.received.append(
            Received(headers=dict(request.headers), body=body, at=arrived, status=answer.status)
        )
        return web.Response(status=answer.status, headers=answer.headers)


class ThreadedReceiver:
    """A Receiver on an event loop of its own thread, for fixtures that are not async (a
    module-scoped one): `with ThreadedReceiver() as receiver: ...`."""

    START_SECONDS = 10.0

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.receiver = Receiver(host=host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-receiver", daemon=True
        )

    def __enter__(self) -> Receiver:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self.receiver.start(), self._loop)
        started.result(timeout=self.START_SECONDS)
        return self.receiver

    def take_down(self) -> None:
        """Stop listening (senders get connection refused); what came so far is kept."""
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop).result(
            timeout=self.START_SECONDS
        )

    def bring_back(self) -> None:
        """Listen again, on the same address."""
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self._loop).result(
            timeout=self.START_SECONDS
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stopped = asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop)
        stopped.result(timeout=self.START_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=self.START_SECONDS)
        self._loop.close()
