"""Request bodies bounded while they are read: a client cannot make the gateway buffer
more than `max_bytes`, whatever Content-Length says or does not say."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegen.gateway import problems


class BodyTooLarge(problems.Problem):
    """413, raised from inside the read so that the app answers it like any problem."""

    def __init__(self, *, max_bytes: int) -> None:
        super().__init__(
            status=413,
            slug="body-too-large",
            detail=f"request body exceeds {max_bytes} bytes",
        )


class BodyLimit:
    """ASGI middleware: refuse a declared Content-Length above the limit at once, and cut
    off a body that grows past it as it arrives (chunked uploads declare nothing)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(max_bytes=self.max_bytes)
            return message

        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:

            async def refuse() -> Message:
                raise BodyTooLarge(max_bytes=self.max_bytes)

            await self.app(scope, refuse, send)
            return
        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
