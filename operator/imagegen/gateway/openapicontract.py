"""What FastAPI cannot infer for the OpenAPI document: the bearer security scheme, the
response headers (Location, RateLimit*, Retry-After), the WebSocket side of the events
endpoint, and an example on every operation. Applied to the generated document by
gateway.openapi, so a generated client (openapi-typescript, say) sends Authorization and
knows the headers it may read."""

from __future__ import annotations

import copy
import json
from typing import Any

from imagegen.gateway import openapiexamples, problems

SCHEME = "apiKey"
_API = "/api/"

_HEADER_TEXT = {
    "RateLimit": (
        'Requests left and seconds until full (IETF draft): `"requests";r=58;t=1`',
        '"requests";r=57;t=2',
    ),
    "RateLimit-Policy": (
        'The limits: `"requests";q=120;w=60` (and `"images"` on a submit)',
        '"requests";q=120;w=60',
    ),
    "X-RateLimit-Limit": ("The requests burst", "120"),
    "X-RateLimit-Remaining": ("Requests left now", "57"),
    "X-RateLimit-Reset": ("Seconds until the budget is full again", "2"),
}
_RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}, "example": example}
    for name, (text, example) in _HEADER_TEXT.items()
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
        "example": 2,
    }
}
_LOCATION = {
    "Location": {
        "description": "The batch's URL, /api/v1/batches/{batch_id}",
        "schema": {"type": "string"},
        "example": openapiexamples.BATCH["links"]["self"],
    }
}
_PRESIGNED_LOCATION = {
    "Location": {
        "description": "A presigned URL of the image in the region's object store",
        "schema": {"type": "string", "format": "uri"},
        "example": openapiexamples.PRESIGNED_URL,
    }
}
_CONTENT_DISPOSITION = {
    "Content-Disposition": {
        "description": "The archive's file name, <batch id>.zip",
        "schema": {"type": "string"},
        "example": openapiexamples.CONTENT_DISPOSITION,
    }
}
_BINARY = {"type": "string", "format": "binary"}
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
"""FastAPI's own 422 shape, which this API never answers (every validation error is a
problem document)."""

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
    found = components.get("schemas", {})
    for name, example in openapiexamples.SCHEMAS.items():
        if name in found:
            found[name]["example"] = example
    if "ProblemDocument" in found:
        found["ProblemDocument"]["example"] = openapiexamples.PROBLEMS["validation"]
    for path, operations in done.get("paths", {}).items():
        for method, operation in operations.items():
            if path.startswith(_API):
                _operation(path=path, method=method, operation=operation)
            elif path in openapiexamples.HEALTH:
                _probe(path=path, operation=operation)
            elif path == "/metrics":
                _metrics(operation)
    for name in _VALIDATION_SCHEMAS:  # HTTPValidationError first: it names the other
        if f'"#/components/schemas/{name}"' not in json.dumps(done):
            found.pop(name, None)
    return done


def _operation(*, path: str, method: str, operation: dict[str, Any]) -> None:
    operation["security"] = [{SCHEME: []}]
    responses = operation.setdefault("responses", {})
    _problem_responses(operation, responses)
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        if status != "401":
            headers.update(_RATE_HEADERS)
        if status in ("429", "503"):
            headers.update(_RETRY_AFTER)
        if status == "202" and method == "post" and not path.endswith("/cancel"):
            headers.update(_LOCATION)
        if status == "302":
            headers.update(_PRESIGNED_LOCATION)
        if status.startswith(("4", "5")):
            _problem_examples(response, method=method, path=path, status=int(status))
        elif status == "200":
            _success_example(response, path=path, headers=headers)
        if not headers:
            del response["headers"]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        body["example"] = openapiexamples.REQUEST
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "idempotency-key":
            parameter["description"] = (
                "Your key for this submission (up to 255 characters, kept 24 h per tenant):"
                " a retry with the same key and body replays the first answer instead of"
                " creating a second batch; another body is 422, one still in flight 409."
            )
            parameter["example"] = "order-42-attempt"
        elif parameter["in"] == "path":
            item = parameter["name"] == "item_id"
            parameter["example"] = "img-000" if item else openapiexamples.BATCH_ID
    if path.endswith("/events") and method == "get":
        operation["description"] = (operation.get("description") or "") + "\n" + EVENTS_CONTRACT


def _problem_responses(operation: dict[str, Any], responses: dict[str, Any]) -> None:
    """Every API operation may answer 403 (the key's tenant is refused) and 503 (Redis or
    Kubernetes down); FastAPI's default 422 is the problem document the app answers, and
    is dropped where no parameter can fail validation (path segments are plain strings)."""
    default = responses.get("422", {}).get("content", {}).get("application/json")
    if default is not None:
        if _validates_input(operation):
            responses.update(_as_text(problems.responses_doc(422)))
        else:
            del responses["422"]
    for status, doc in _as_text(problems.responses_doc(403, 503)).items():
        responses.setdefault(status, doc)
    operation["responses"] = dict(sorted(responses.items()))


def _validates_input(operation: dict[str, Any]) -> bool:
    return "requestBody" in operation or any(
        p["in"] != "path" for p in operation.get("parameters", [])
    )


def _as_text(docs: dict[int | str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(status): doc for status, doc in docs.items()}


def _problem_examples(response: dict[str, Any], *, method: str, path: str, status: int) -> None:
    media = response.get("content", {}).get(problems.MEDIA_TYPE)
    if media is None:
        return
    media["examples"] = {
        name: {"summary": example["detail"], "value": example}
        for name, example in openapiexamples.problems_of(
            method=method, path=path, status=status
        ).items()
    }


def _success_example(response: dict[str, Any], *, path: str, headers: dict[str, Any]) -> None:
    """Examples for the answers that are not JSON of a component schema."""
    content = response.get("content", {})
    if path.endswith("/events"):
        content["text/event-stream"] = {
            "schema": {"type": "string"},
            "example": openapiexamples.EVENT_STREAM,
        }
    elif path.endswith("/images.zip"):
        headers.update(_CONTENT_DISPOSITION)
        content["application/zip"] = {
            "schema": _BINARY,
            "examples": {
                "archive": {
                    "summary": "A zip of <item id>.<ext> entries, stored uncompressed",
                    "description": "What GET"
                    f" {openapiexamples.BATCH['links']['self']}/images.zip answers: the"
                    " bytes of the archive, streamed (binary: no value shown here).",
                }
            },
        }
    elif path.endswith("/images/{item_id}"):
        for media_type in list(content):
            content[media_type] = {
                "schema": _BINARY,
                "examples": {
                    "image": {
                        "summary": "The image file the worker stored, as it is",
                        "description": f"What GET {openapiexamples.BATCH['items'][0]['image']}"
                        " answers: the file's bytes (binary: no value shown here).",
                    }
                },
            }


def _probe(*, path: str, operation: dict[str, Any]) -> None:
    for status, example in openapiexamples.HEALTH[path].items():
        response = operation["responses"][status]
        response["content"] = {
            "application/json": {"schema": {"type": "object"}, "example": example}
        }


def _metrics(operation: dict[str, Any]) -> None:
    media = operation["responses"]["200"]["content"]["text/plain"]
    media["example"] = openapiexamples.METRICS
