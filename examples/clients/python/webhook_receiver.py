"""Receive the batch's webhooks and verify their Standard Webhooks signatures.

    IMAGEGEN_URL=... IMAGEGEN_API_KEY=... IMAGEGEN_WEBHOOK_SECRET=whsec_... \
    WEBHOOK_PUBLIC_URL=https://hooks.example.com/imagegen python webhook_receiver.py

Listens on WEBHOOK_HOST:WEBHOOK_PORT (default 0.0.0.0:8080), submits a batch whose
webhook is WEBHOOK_PUBLIC_URL (an address the gateway can reach, which is this server),
and exits 0 once a correctly signed `batch.completed` for it arrived (1 when none came
within WEBHOOK_WAIT_SECONDS). Requests with a bad signature or an old timestamp are
answered 400 and otherwise ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import queue
import sys
import threading
import time
from typing import Any

import batch_client

TOLERANCE_SECONDS = 300
WAIT_SECONDS = float(os.environ.get("WEBHOOK_WAIT_SECONDS", "600"))


def verify(secret: str, headers: Any, body: bytes) -> dict[str, Any]:
    """The event, if the request is signed with the secret and recent; else ValueError."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if not msg_id or not timestamp or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise ValueError("missing or stale webhook-id / webhook-timestamp")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several signatures, space-separated, are sent while a secret is being rotated.
    if not any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split()):
        raise ValueError("no signature matches")
    event: dict[str, Any] = json.loads(body)
    return event


def serve(secret: str, received: queue.Queue[dict[str, Any]]) -> http.server.HTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                event = verify(secret, self.headers, body)
            except (ValueError, KeyError, TypeError) as error:
                self.send_response(400)
                self.end_headers()
                print(f"refused a delivery: {error}")
                return
            # Answer fast (2xx within seconds); do the work after, deduplicating by
            # webhook-id: a delivery may come more than once.
            self.send_response(204)
            self.end_headers()
            received.put(event)

        def log_message(self, *_: Any) -> None:
            pass

    host = os.environ.get("WEBHOOK_HOST", "0.0.0.0")  # noqa: S104
    server = http.server.ThreadingHTTPServer(
        (host, int(os.environ.get("WEBHOOK_PORT", "8080"))), Handler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    server = serve(os.environ["IMAGEGEN_WEBHOOK_SECRET"], received)
    try:
        with batch_client.client() as http:
            request = batch_client.example_batch()
            request["webhook"] = {
                "url": os.environ["WEBHOOK_PUBLIC_URL"],
                "events": ["running", "succeeded", "partiallySucceeded", "failed"],
            }
            batch = batch_client.submit(http, request)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                event = received.get(timeout=5)
            except queue.Empty:
                continue
            if event["data"]["id"] != batch["id"]:
                continue
            print(
                f"verified {event['type']}: {event['data']['status']} {event['data']['progress']}"
            )
            if event["type"] in ("batch.completed", "batch.failed"):
                return 0 if event["data"]["status"] == "Succeeded" else 1
        print("no completion webhook arrived in time")
        return 1
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
