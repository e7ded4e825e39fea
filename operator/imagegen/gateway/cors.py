"""Cross-origin calls from the browser origins the settings name (a partner's browser
extension, its own web app), and from no other.

Keys travel in `Authorization`, never in cookies, so credentialed CORS is never allowed:
a page of an allowed origin can call the API only with a key it holds itself. Starlette's
middleware answers preflights; to an origin not listed it would still send
Access-Control-Expose-Headers (and, on a refused preflight, the allowed methods and
headers), which `ListedOriginsOnly` strips, so such an origin gets no CORS header at all."""

from __future__ import annotations

import fastapi
from starlette import datastructures
from starlette.middleware import cors
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
EXPOSED_HEADERS = (
    "Location",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Request-Id",
)
PREFLIGHT_CACHE_SECONDS = 600
_CORS_PREFIX = b"access-control-"


def add(app: fastapi.FastAPI, *, origins: list[str]) -> None:
    """Answer CORS for exactly these origins; nothing at all when there are none."""
    if not origins:
        return
    app.add_middleware(ListedOriginsOnly, origins=origins)


class ListedOriginsOnly:
    """ASGI middleware: Starlette's CORS for `origins`, and no Access-Control-* header in
    any answer to a request from another origin (its Vary: Origin stays, for caches)."""

    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self._cors = cors.CORSMiddleware(
            app,
            allow_origins=origins,
            allow_credentials=False,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_CACHE_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = (
            datastructures.Headers(scope=scope).get("origin") if scope["type"] == "http" else None
        )
        if origin is None or self._cors.is_allowed_origin(origin=origin):
            await self._cors(scope, receive, send)
            return

        async def without_cors_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not name.lower().startswith(_CORS_PREFIX)
                ]
                message = {**message, "headers": kept}
            await send(message)

        await self._cors(scope, receive, without_cors_headers)
