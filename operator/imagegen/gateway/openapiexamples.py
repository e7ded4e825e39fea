"""The examples of the OpenAPI document: what each operation takes and answers, its
problems included, with the problem types and details the gateway really sends (a unit
test checks each type against the code). Applied by gateway.openapicontract."""

from __future__ import annotations

import json
from typing import Any

from imagegen.gateway import problems

BATCH_ID = "batch-3f2a9c01d4e5"
_BATCH_PATH = f"/api/v1/batches/{BATCH_ID}"

BATCH: dict[str, Any] = {
    "id": BATCH_ID,
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
            "image": f"{_BATCH_PATH}/images/img-000",
        }
    ],
    "links": {
        "self": _BATCH_PATH,
        "events": f"{_BATCH_PATH}/events",
        "cancel": f"{_BATCH_PATH}/cancel",
        "images": f"{_BATCH_PATH}/images/{{item_id}}",
    },
}
REQUEST: dict[str, Any] = {
    "items": [
        {"id": "img-000", "prompt": "a lighthouse at dawn", "seed": 7},
        {"id": "img-001", "prompt": "a lighthouse in the rain", "size": "512x512"},
    ],
    "defaults": {"size": "1024x1024", "provider": "local", "format": "png"},
    "priority": "high",
    "webhook": {"url": "https://hooks.example.com/imagegen", "events": ["succeeded", "failed"]},
    "metadata": {"order": "42"},
}
SCHEMAS: dict[str, Any] = {
    "BatchObject": BATCH,
    "BatchList": {"data": [BATCH], "next_cursor": "YmF0Y2gtM2YyYTljMDFkNGU1"},
    "StreamTicket": {
        "ticket": "igt_4kq0sX2d8m1cQ0a9Zr5bYw3nEo7t",
        "expires_in": 30,
        "parameter": "ticket",
    },
    "ImageList": {
        "data": [
            {
                "id": "img-000",
                "file_name": "img-000.png",
                "content_type": "image/png",
                "image": f"{_BATCH_PATH}/images/img-000",
            }
        ],
        "archive": f"{_BATCH_PATH}/images.zip",
    },
}
"""Component schemas' examples, by schema name."""

_RUNNING = {**BATCH, "cancel_requested": True}
EVENT_STREAM = (
    f"event: batch\ndata: {json.dumps(BATCH, separators=(',', ':'))}\n\n"
    ": ping\n\n"
    f"event: batch\ndata: {json.dumps(_RUNNING, separators=(',', ':'))}\n\n"
)
"""What an SSE stream carries: `batch` events, and a comment line now and then."""

CONTENT_DISPOSITION = f'attachment; filename="{BATCH_ID}.zip"'
PRESIGNED_URL = (
    "https://images-us-east.s3.example.com/imagegen/acme/6a1f.../img-000.png"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature=..."
)
HEALTH = {
    "/healthz": {
        "200": {"status": "ok"},
        "503": {"status": "dead loops", "dead": ["webhook dispatcher"]},
    },
    "/readyz": {
        "200": {"status": "ready"},
        "503": {"status": "not ready", "missing": ["redis"]},
    },
}
METRICS = (
    "# HELP imagegen_gateway_requests_total Requests answered, by route and status class.\n"
    "# TYPE imagegen_gateway_requests_total counter\n"
    'imagegen_gateway_requests_total{code="2xx",method="POST",route="/api/v1/batches",'
    'tenant="acme"} 42.0\n'
)


def _problem(
    status: int, slug: str, detail: str, errors: list[problems.FieldError] | None = None
) -> dict[str, Any]:
    problem = problems.Problem(status=status, slug=slug, detail=detail, errors=errors or [])
    return problem.document().model_dump()


PROBLEMS: dict[str, dict[str, Any]] = {
    "malformed-json": _problem(
        400,
        "malformed-json",
        "request body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
        [problems.field_error([], "not valid JSON")],
    ),
    "bad-cursor": _problem(
        400,
        "bad-cursor",
        "cursor is not one this API returned",
        [problems.field_error(["cursor"], "not a cursor from next_cursor")],
    ),
    "unauthenticated": _problem(401, "unauthenticated", "unknown or expired API key"),
    "bad-stream-ticket": _problem(
        401,
        "bad-stream-ticket",
        "stream ticket unknown, already used, expired or for another batch; ask for a new one",
    ),
    "tenant-not-ready": _problem(
        403,
        "tenant-not-ready",
        "tenant acme is not served until its spec is fixed:"
        " NamespaceOwnedByAnotherTenant: namespace tenant-acme belongs to tenant other",
    ),
    "batch-not-found": _problem(404, "batch-not-found", f"no batch {BATCH_ID!r}"),
    "item-not-found": _problem(404, "item-not-found", "batch has no item 'img-404'"),
    "image-not-found": _problem(404, "image-not-found", "the image is no longer stored"),
    "not-acceptable": _problem(
        406, "not-acceptable", "send Accept: text/event-stream, or open a WebSocket here"
    ),
    "request-timeout": _problem(408, "request-timeout", "request body not received in time"),
    "idempotency-in-flight": _problem(
        409,
        "idempotency-in-flight",
        "a request with this Idempotency-Key is still being processed",
    ),
    "batch-finished": _problem(409, "batch-finished", "batch already finished (Succeeded)"),
    "image-not-ready": _problem(409, "image-not-ready", "item 'img-007' is Running, no image yet"),
    "no-images": _problem(409, "no-images", f"batch {BATCH_ID!r} has no stored image yet"),
    "body-too-large": _problem(413, "body-too-large", "request body exceeds 1048576 bytes"),
    "validation": _problem(
        422,
        "validation",
        "invalid fields: items.3.size",
        [
            problems.field_error(
                ["items", 3, "size"],
                "String should match pattern '^[1-9][0-9]{1,3}x[1-9][0-9]{1,3}$'",
            )
        ],
    ),
    "invalid-parameters": _problem(
        422,
        "validation",
        "invalid parameters: query.limit",
        [problems.field_error(["query", "limit"], "Input should be less than or equal to 500")],
    ),
    "invalid-ticket": _problem(
        422,
        "validation",
        "invalid parameters: query.ticket",
        [problems.field_error(["query", "ticket"], "String should have at most 100 characters")],
    ),
    "unsafe-webhook-url": _problem(
        422,
        "unsafe-webhook-url",
        "webhook.url refused: hooks.example.com resolves to 10.0.0.7, which is a private"
        " address; not allowed for webhooks",
        [
            problems.field_error(
                ["webhook", "url"],
                "hooks.example.com resolves to 10.0.0.7, which is a private address;"
                " not allowed for webhooks",
            )
        ],
    ),
    "idempotency-key-reused": _problem(
        422,
        "idempotency-key-reused",
        "Idempotency-Key was used with a different request body",
        [problems.field_error(["Idempotency-Key"], "used with another body")],
    ),
    "rate-limited": _problem(429, "rate-limited", "rate limit exceeded; retry after 2 s"),
    "too-many-streams": _problem(
        429,
        "too-many-streams",
        "tenant acme has 100 streams open, its most; close one or retry later",
    ),
    "images-not-served": _problem(
        501,
        "images-not-served",
        "this gateway has no object store configured (settings: stores, images_dir)",
    ),
    "backend-unavailable": _problem(
        503,
        "backend-unavailable",
        "the gateway could not reach Kubernetes or Redis; retry later",
    ),
    "webhook-host-unresolved": _problem(
        503,
        "webhook-host-unresolved",
        "webhook.url could not be checked now: host hooks.example.com did not resolve"
        " within 5s; retry later",
    ),
    "store-unavailable": _problem(
        503, "store-unavailable", "the image store could not be reached; retry later"
    ),
}
"""One example per problem the API answers, by name (its problem type, but for the
validation errors of bodies and of parameters, which share the type `validation`)."""

_COMMON: dict[int, list[str]] = {
    401: ["unauthenticated"],
    403: ["tenant-not-ready"],
    404: ["batch-not-found"],
    406: ["not-acceptable"],
    408: ["request-timeout"],
    413: ["body-too-large"],
    422: ["invalid-parameters"],
    429: ["rate-limited"],
    501: ["images-not-served"],
    503: ["backend-unavailable"],
}
_SUBMIT: dict[int, list[str]] = {
    400: ["malformed-json"],
    409: ["idempotency-in-flight"],
    422: ["validation", "unsafe-webhook-url", "idempotency-key-reused"],
    503: ["backend-unavailable", "webhook-host-unresolved"],
}
_IMAGE_STORE = ["backend-unavailable", "store-unavailable"]
_BY_OPERATION: dict[tuple[str, str], dict[int, list[str]]] = {
    ("post", "/api/v1/batches"): _SUBMIT,
    ("post", "/api/v1/batch/generate"): _SUBMIT,
    ("get", "/api/v1/batches"): {400: ["bad-cursor"]},
    ("post", "/api/v1/batches/{batch_id}/cancel"): {409: ["batch-finished"]},
    ("get", "/api/v1/batches/{batch_id}/events"): {
        401: ["unauthenticated", "bad-stream-ticket"],
        422: ["invalid-ticket"],
        429: ["rate-limited", "too-many-streams"],
    },
    ("get", "/api/v1/batches/{batch_id}/images/{item_id}"): {
        404: ["batch-not-found", "item-not-found", "image-not-found"],
        409: ["image-not-ready"],
        503: _IMAGE_STORE,
    },
    ("get", "/api/v1/batches/{batch_id}/images.zip"): {
        404: ["batch-not-found", "image-not-found"],
        409: ["no-images"],
        503: _IMAGE_STORE,
    },
}


def problems_of(*, method: str, path: str, status: int) -> dict[str, dict[str, Any]]:
    """The examples (name -> problem document) of one operation's error status; empty
    when none is known, which the unit tests refuse."""
    names = _BY_OPERATION.get((method, path), {}).get(status) or _COMMON.get(status, [])
    return {name: PROBLEMS[name] for name in names}
