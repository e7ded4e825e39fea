"""A small client of the imagegen batch API, shared by the examples beside it.

Configuration comes from the environment: IMAGEGEN_URL (the gateway, such as
https://imagegen.example.com) and IMAGEGEN_API_KEY (your tenant's key, igk_...).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import httpx

TERMINAL = {"Succeeded", "PartiallySucceeded", "Failed", "Cancelled", "Rejected"}
RETRIED = {408, 409, 429, 502, 503, 504}
"""Worth another try with the same Idempotency-Key; every other error is final."""
MAX_ATTEMPTS = 6


def client() -> httpx.Client:
    """An HTTP client of the gateway that sends the API key on every request."""
    return httpx.Client(
        base_url=os.environ["IMAGEGEN_URL"],
        headers={"Authorization": f"Bearer {os.environ['IMAGEGEN_API_KEY']}"},
        timeout=httpx.Timeout(30.0, connect=5.0),
    )


def retry_after(reply: httpx.Response, attempt: int) -> float:
    """Seconds to wait before the next attempt: the server's Retry-After when it sent
    one, else exponential backoff with jitter."""
    header = reply.headers.get("Retry-After")
    if header is not None and header.isdigit():
        return float(header)
    return min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311


def request(http: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One API call, retried on 408/409/429/5xx as the server asks; raises for the rest."""
    for attempt in range(MAX_ATTEMPTS):
        reply = http.request(method, url, **kwargs)
        if reply.status_code not in RETRIED or attempt == MAX_ATTEMPTS - 1:
            break
        time.sleep(retry_after(reply, attempt))
    if reply.is_error:
        problem = reply.json() if "json" in reply.headers.get("content-type", "") else {}
        fields = "; ".join(f"{e['field']}: {e['detail']}" for e in problem.get("errors", []))
        raise RuntimeError(
            f"{method} {url}: {reply.status_code} {problem.get('detail', reply.text)} {fields}"
        )
    return reply


def submit(http: httpx.Client, batch: dict[str, Any]) -> dict[str, Any]:
    """Submit a batch once, whatever the retries: one Idempotency-Key for all attempts."""
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    reply = request(http, "POST", "/api/v1/batches", json=batch, headers=headers)
    created: dict[str, Any] = reply.json()
    print(f"submitted {created['id']} ({reply.headers['Location']});"
          f" requests left: {reply.headers.get('RateLimit')}")  # fmt: skip
    return created


def example_batch(count: int = 5) -> dict[str, Any]:
    """A small batch: `count` images of a lighthouse."""
    return {
        "items": [{"id": f"img-{n}", "prompt": f"a lighthouse, take {n}"} for n in range(count)],
        "defaults": {"size": "256x256", "format": "png"},
        "priority": "normal",
        "metadata": {"order": "example-42"},
    }


def save_images(http: httpx.Client, batch: dict[str, Any], folder: str) -> int:
    """Download every finished image of the batch into folder; return how many."""
    os.makedirs(folder, exist_ok=True)
    saved = 0
    for item in batch["items"]:
        if item["state"] != "Succeeded":
            continue
        # The gateway may answer with a 302 to a short-lived URL of the object store;
        # httpx follows it on request and does not send the key to that other host.
        reply = request(http, "GET", item["image"], follow_redirects=True)
        with open(os.path.join(folder, f"{batch['id']}-{item['id']}.png"), "wb") as out:
            out.write(reply.content)
        saved += 1
    return saved


def show(batch: dict[str, Any]) -> None:
    """One line of the batch's progress."""
    print(f"{batch['status']:<10} {batch.get('progress') or ''}")


def finish(http: httpx.Client, batch: dict[str, Any]) -> int:
    """Save the finished batch's images under out/, say so; the exit code: 0 if it
    succeeded."""
    saved = save_images(http, batch, "out")
    print(f"{batch['id']}: {batch['status']}, {saved} images saved under out/")
    return 0 if batch["status"] == "Succeeded" else 1
