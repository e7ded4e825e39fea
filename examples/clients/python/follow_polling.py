"""Submit a batch and poll it until it ends: the simplest way, for batch jobs and crons.

    IMAGEGEN_URL=... IMAGEGEN_API_KEY=... python follow_polling.py

Polls every 2 s (each poll is one request against your rate limit). Exits 0 when the
batch succeeded.
"""

from __future__ import annotations

import sys
import time

import batch_client

POLL_SECONDS = 2.0
GIVE_UP_SECONDS = 600.0


def main() -> int:
    with batch_client.client() as http:
        batch = batch_client.submit(http, batch_client.example_batch())
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while batch["status"] not in batch_client.TERMINAL and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            batch = batch_client.request(http, "GET", batch["links"]["self"]).json()
            batch_client.show(batch)
        return batch_client.finish(http, batch)


if __name__ == "__main__":
    sys.exit(main())
