"""Cross-origin calls from the browser origins the settings name (a partner's browser
extension, its own web app), and from no other.

Keys travel in `Authorization`, never in cookies, so credentialed CORS is never allowed:
a page of an allowed origin can call the API only with a key it holds itself. Starlette's
middleware answers preflights, and sends no CORS header at all to an origin not listed."""

from __future__ import annotations

import fastapi
from starlette.middleware import cors

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


def add(app: fastapi.FastAPI, *, origins: list[str]) -> None:
    """Answer CORS for exactly these origins; nothing at all when there are none."""
    if not origins:
        return
    app.add_middleware(
        cors.CORSMiddleware,
        allow_origins=origins,
        allow_credentials=False,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_CACHE_SECONDS,
    )
