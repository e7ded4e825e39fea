"""Submit a batch and follow it with Server-Sent Events (plain HTTP, through any proxy).

    IMAGEGEN_URL=... IMAGEGEN_API_KEY=... python follow_sse.py

Exits 0 when the batch succeeded.
"""

from __future__ import annotations

import json
import sys

import batch_client
import httpx


def main() -> int:
    with batch_client.client() as http:
        batch = batch_client.submit(http, batch_client.example_batch())
        # Each `batch` event's data is the batch object; the server ends the stream after
        # a terminal phase, and sends a comment every 15 s so proxies keep it open.
        with http.stream(
            "GET",
            batch["links"]["events"],
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(30.0, read=60.0),
        ) as stream:
            event = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event == "batch":
                    batch = json.loads(line.removeprefix("data:"))
                    batch_client.show(batch)
        return batch_client.finish(http, batch)


if __name__ == "__main__":
    sys.exit(main())
