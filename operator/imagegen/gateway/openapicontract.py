"""What FastAPI cannot infer for the OpenAPI document: the bearer security scheme, the
response headers (Location, RateLimit*, Retry-After), the WebSocket side of the events
endpoint, and an example on every operation. Applied to the generated document by
gateway.openapi, so a generated client (openapi-typescript, say) sends Authorization and
knows the headers it may read."""

from __future__ import annotations

import copy
from typing import Any

SCHEME = "apiKey"
_API = "/api/"

_HEADER_TEXT = {
    "RateLimit": 'Requests left and seconds until full (IETF draft): `"requests";r=58;t=1`',
    "RateLimit-Policy": 'The limits: `"requests";q=120;w=60` (and `"images"` on a submit)',
    "X-RateLimit-Limit": "The requests burst",
    "X-RateLimit-Remaining": "Requests left now",
    "X-RateLimit-Reset": "Seconds until the budget is full again",
}
_RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}} for name, text in _HEADER_TEXT.items()
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_LOCATION = {
    "Location": {
        "description": "The batch's URL, /api/v1/batches/{batch_id}",
        "schema": {"type": "string"},
    }
}

_BATCH_EXAMPLE: dict[str, Any] = {
    "id": "batch-3f2a9c01d4e5",
    "status": "Running",
    "message": None,
    "progress": "37/100",
    "request_counts": {"total": 100, "queued": 55, "running": 8, "succeeded": 36, "failed": 1},
    "priority": "normal",
    "cancel_requested": False,
    "region": "us-east",
    "created_at": "2026-11-26T06:00:00Z",
    "deadline": "2026-11-26T06:05:00Z",
    "completed_at": None,
    "metadata": {"order": "42"},
    "items": [
        {
            "id": "img-000",
            "state": "Succeeded",
            "error": None,
            "image": "/api/v1/batches/batch-3f2a9c01d4e5/images/img-000",
        }
    ],
    "links": {
        "self": "/api/v1/batches/batch-3f2a9c01d4e5",
        "events": "/api/v1/batches/batch-3f2a9c01d4e5/events",
        "cancel": "/api/v1/batches/batch-3f2a9c01d4e5/cancel",
        "images": "/api/v1/batches/batch-3f2a9c01d4e5/images/{item_id}",
    },
}
_REQUEST_EXAMPLE = {
    "items": [
        {"id": "img-000", "prompt": "a lighthouse at dawn", "seed": 7},
        {"id": "img-001", "prompt": "a lighthouse in the rain", "size": "512x512"},
    ],
    "defaults": {"size": "1024x1024", "provider": "local", "format": "png"},
    "priority": "high",
    "webhook": {"url": "https://hooks.example.com/imagegen", "events": ["succeeded", "failed"]},
    "metadata": {"order": "42"},
}
_PROBLEM_EXAMPLE = {
    "type": "https://imagegen.semantest.io/problems/validation",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "invalid fields: items.3.size",
    "errors": [
        {
            "pointer": "/items/3/size",
            "field": "items.3.size",
            "detail": "String should match pattern '^[1-9][0-9]{1,3}x[1-9][0-9]{1,3}$'",
        }
    ],
}
_EXAMPLES: dict[str, Any] = {
    "BatchObject": _BATCH_EXAMPLE,
    "BatchList": {"data": [_BATCH_EXAMPLE], "next_cursor": "YmF0Y2gtM2YyYTljMDFkNGU1"},
    "StreamTicket": {"ticket": "igt_4kq0sX2d8m1cQ0a9Zr5bYw3nEo7t", "expires_in": 30},
}

EVENTS_CONTRACT = """
**Two transports at this path.**

*Server-Sent Events*: `GET` with `Accept: text/event-stream`. Each `batch` event's `data`
is a `BatchObject` (the batch now, then after every change); a comment line every 15 s
keeps proxies from closing the stream; the server ends the stream after a terminal phase
(`Succeeded`, `PartiallySucceeded`, `Failed`, `Cancelled`, `Rejected`) or when the batch
is deleted.

*WebSocket*: open `ws(s)://<host>/api/v1/batches/{batch_id}/events`. The server sends one
text message per change, each a `BatchObject` as JSON, and closes with code 1000 after a
terminal phase. The client sends nothing. A refused handshake is answered with the
problem document and its status (401, 404, 429) where the server can, else closed with
1008 and the detail as the reason.

**Authentication.** `Authorization: Bearer <API key>`, as everywhere; or, for browsers
(which cannot set headers on a WebSocket or an EventSource), `?ticket=` with a ticket from
`POST /api/v1/batches/{batch_id}/events/tickets`: single-use, for this batch only, valid
for `expires_in` seconds. Never put the API key in a URL.

A dropped stream loses nothing: reconnect (new ticket) or `GET` the batch.
"""


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the contract added (a new dict; the argument is not changed)."""
    done = copy.deepcopy(document)
    components = done.setdefault("components", {})
    components["securitySchemes"] = {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "igk_<43 characters>",
            "description": "Your tenant's API key, from the Secret <tenant>-api-key"
            " (key `api-key`) in the tenant's namespace.",
        }
    }
    for name, example in _EXAMPLES.items():
        if name in components.get("schemas", {}):
            components["schemas"][name]["example"] = example
    if "ProblemDocument" in components.get("schemas", {}):
        components["schemas"]["ProblemDocument"]["example"] = _PROBLEM_EXAMPLE
    for path, operations in done.get("paths", {}).items():
        if not path.startswith(_API):
            continue
        for method, operation in operations.items():
            _operation(path=path, method=method, operation=operation)
    return done


def _operation(*, path: str, method: str, operation: dict[str, Any]) -> None:
    operation["security"] = [{SCHEME: []}]
    for status, response in operation.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        if status != "401":
            headers.update(_RATE_HEADERS)
        if status in ("429", "503"):
            headers.update(_RETRY_AFTER)
        if status == "202" and method == "post" and not path.endswith("/cancel"):
            headers.update(_LOCATION)
        if not headers:
            del response["headers"]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        body["example"] = _REQUEST_EXAMPLE
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "idempotency-key":
            parameter["description"] = (
                "Your key for this submission (up to 255 characters, kept 24 h per tenant):"
                " a retry with the same key and body replays the first answer instead of"
                " creating a second batch; another body is 422, one still in flight 409."
            )
            parameter["example"] = "order-42-attempt"
    if path.endswith("/events") and method == "get":
        operation["description"] = (operation.get("description") or "") + "\n" + EVENTS_CONTRACT
