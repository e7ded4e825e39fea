"""A local fake of an OpenAI-compatible images endpoint: a real HTTP server on a loopback
port that answers a planned sequence of failures, then PNGs of the asked size."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
from collections.abc import AsyncIterator

from aiohttp import web
from PIL import Image

KEY = "sk-test-5ecret-never-logged"


@dataclasses.dataclass(frozen=True)
class Fail:
    """Answer with an error status, OpenAI-style body, and optional Retry-After."""

    status: int
    message: str = "server trouble"
    retry_after: str | None = None


@dataclasses.dataclass(frozen=True)
class Slow:
    """Answer only after the client's read timeout has passed."""


@dataclasses.dataclass(frozen=True)
class Garbage:
    """Answer 200 with a body that holds no image."""


Step = Fail | Slow | Garbage


@dataclasses.dataclass
class FakeImagesServer:
    """Answers the planned steps in turn, then `always` (None: a PNG of the asked size)."""

    base_url: str = ""
    plan: list[Step] = dataclasses.field(default_factory=list)
    always: Step | None = None
    bodies: list[dict[str, object]] = dataclasses.field(default_factory=list)
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization", "")
        if presented != f"Bearer {KEY}":
            # Like OpenAI, echo the refused key: the provider must not pass it on.
            given = presented.removeprefix("Bearer ")
            return error_response(status=401, message=f"Incorrect API key provided: {given}")
        body = await request.json()
        self.bodies.append(body)
        step = self.plan.pop(0) if self.plan else self.always
        if isinstance(step, Fail):
            headers = {"Retry-After": step.retry_after} if step.retry_after else None
            return error_response(status=step.status, message=step.message, headers=headers)
        if isinstance(step, Slow):
            # Held until the server stops, long past the client's read timeout.
            await self.released.wait()
        if isinstance(step, Garbage):
            return web.json_response({"created": 1, "data": []})
        width, height = (int(side) for side in body["size"].split("x"))
        return web.json_response(
            {"created": 1, "data": [{"b64_json": base64.b64encode(png(width, height)).decode()}]}
        )


def error_response(
    *, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "code": None}},
        status=status,
        headers=headers,
    )


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[FakeImagesServer]:
    """A fake server on a free loopback port, for the block; its API root is `base_url`."""
    fake = FakeImagesServer()
    app = web.Application()
    app.router.add_post("/v1/images/generations", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        fake.base_url = f"http://{host}:{port}/v1"
        yield fake
    finally:
        fake.released.set()
        await runner.cleanup()
