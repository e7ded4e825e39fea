"""The batch UI: static files shipped in the package (gateway/ui/), served under /ui/
with a strict Content-Security-Policy. Plain ES modules, no build step: what is in git is
what the browser runs, with no bundler to install, audit or keep current, and it works
with no internet (no CDN)."""

from __future__ import annotations

import pathlib

import fastapi
from fastapi import responses, staticfiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATH = "/ui"
FILES = pathlib.Path(__file__).resolve().parent.parent / "ui"

# No inline script or style, nothing from another origin; images may be the object URLs
# the page makes from fetched images; streams and API calls go to this origin only
# ('self' covers ws:/wss: of the same host in CSP Level 3).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:;"
    " connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = fastapi.APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> responses.RedirectResponse:
    """A person opening the gateway's address lands on the UI."""
    return responses.RedirectResponse(PATH + "/")


def mount(app: fastapi.FastAPI) -> None:
    """Serve gateway/ui/ under /ui/ with the security headers."""
    app.include_router(router)
    app.mount(PATH, _WithHeaders(staticfiles.StaticFiles(directory=FILES, html=True)), name="ui")


class _WithHeaders:
    """ASGI wrapper adding HEADERS to every answer of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(name.lower().encode(), value.encode()) for name, value in HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
