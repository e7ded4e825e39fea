"""Serve the app with uvicorn: the `imagegen gateway` process."""

from __future__ import annotations

import uvicorn

from imagegen.gateway import app, settings


def serve(config: settings.GatewaySettings) -> None:
    """Run until SIGTERM or SIGINT; uvicorn stops accepting, finishes requests, then exits."""
    server = uvicorn.Server(
        uvicorn.Config(
            app.create_app(config),
            host=config.host,
            port=config.port,
            # uvicorn's access log would print every request; /metrics counts them.
            access_log=False,
            ws="websockets",
            timeout_graceful_shutdown=10,
            log_config=None,
        )
    )
    server.run()
