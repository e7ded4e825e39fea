"""Submit a batch, follow it live over the WebSocket, download its images.

    IMAGEGEN_URL=... IMAGEGEN_API_KEY=... python follow_websocket.py

Exits 0 when the batch succeeded. Servers and clients that can send headers on the
WebSocket handshake (this one) use Authorization; browsers use a stream ticket instead.
"""

from __future__ import annotations

import json
import os
import sys

import batch_client
from websockets.sync import client as websocket


def main() -> int:
    with batch_client.client() as http:
        batch = batch_client.submit(http, batch_client.example_batch())
        url = str(http.base_url.join(batch["links"]["events"]))
        url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        headers = {"Authorization": f"Bearer {os.environ['IMAGEGEN_API_KEY']}"}
        # The server sends the batch now and at every change, then closes (1000) after a
        # terminal phase. A dropped connection loses nothing: reconnect, or GET the batch.
        with websocket.connect(url, additional_headers=headers, open_timeout=30) as socket:
            for message in socket:
                batch = json.loads(message)
                batch_client.show(batch)
        return batch_client.finish(http, batch)


if __name__ == "__main__":
    sys.exit(main())
