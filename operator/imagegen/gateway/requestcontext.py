"""A request id per request: the correlation id of its log lines, of the ImageBatch it
creates (the operator and the workers log it too) and of the `X-Request-Id` header the
client gets back, so one grep follows a submission through every process."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegen import logs

HEADER = "X-Request-Id"
STATE = "request_id"
"""The request-state key the id is kept under, for handlers (request.state.request_id)."""


def new_id() -> str:
    """A fresh request id: random, so it reveals nothing and never collides in practice."""
    return f"req-{secrets.token_hex(8)}"


class RequestContext:
    """ASGI middleware: give each HTTP request and WebSocket an id, bind it to every log
    line logged while handling it, and answer it in `X-Request-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = new_id()
        scope.setdefault("state", {})[STATE] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = [
                    *message.get("headers", []),
                    (HEADER.lower().encode(), request_id.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        with logs.bound(correlation_id=request_id):
            await self.app(scope, receive, send_with_id)
