"""The committed OpenAPI document is what the gateway generates, and documents what the
API answers: problem documents for errors, the submission body by reference."""

import json
import pathlib
import re
from collections.abc import Iterator
from typing import Any

from imagegen.gateway import app, openapi, openapicontract, problems, schemas, settings

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "docs" / "openapi.json"
GATEWAY_SOURCE = REPO / "operator" / "imagegen" / "gateway"
GENERATED = openapi.render(app.create_app(settings.GatewaySettings()))


def test_the_committed_document_is_current_run_make_openapi_when_this_fails() -> None:
    assert DOCUMENT.read_text() == GENERATED


def test_every_referenced_schema_is_in_the_components() -> None:
    document = json.loads(GENERATED)
    text = json.dumps(document)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs <= set(document["components"]["schemas"])


def test_both_submission_paths_and_every_endpoint_are_documented() -> None:
    paths = json.loads(GENERATED)["paths"]
    assert set(paths) >= {
        "/api/v1/batch/generate",
        "/api/v1/batches",
        "/api/v1/batches/{batch_id}",
        "/api/v1/batches/{batch_id}/cancel",
        "/api/v1/batches/{batch_id}/images/{item_id}",
        "/api/v1/batches/{batch_id}/events",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    submit = paths["/api/v1/batch/generate"]["post"]
    assert set(submit["responses"]) >= {"202", "400", "401", "413", "422", "429"}
    assert "application/problem+json" in submit["responses"]["422"]["content"]


def test_every_api_operation_asks_for_the_bearer_key() -> None:
    document = json.loads(GENERATED)
    scheme = document["components"]["securitySchemes"][openapicontract.SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, operations in document["paths"].items():
        for operation in operations.values():
            expected = [{openapicontract.SCHEME: []}] if path.startswith("/api/") else None
            assert operation.get("security") == expected, path


def test_the_headers_a_client_reads_are_documented() -> None:
    paths = json.loads(GENERATED)["paths"]
    submit = paths["/api/v1/batches"]["post"]
    accepted = submit["responses"]["202"]["headers"]
    assert {"Location", "RateLimit", "RateLimit-Policy", "X-RateLimit-Remaining"} <= set(accepted)
    assert "Retry-After" in submit["responses"]["429"]["headers"]
    assert "idempotency-key" in {p["name"] for p in submit["parameters"]}
    events = paths["/api/v1/batches/{batch_id}/events"]["get"]
    assert "WebSocket" in events["description"]
    assert "ticket" in {p["name"] for p in events["parameters"]}


def test_the_examples_are_what_the_api_accepts_and_answers() -> None:
    document = json.loads(GENERATED)
    found = document["components"]["schemas"]
    schemas.BatchObject.model_validate(found["BatchObject"]["example"])
    schemas.BatchList.model_validate(found["BatchList"]["example"])
    schemas.StreamTicket.model_validate(found["StreamTicket"]["example"])
    problems.ProblemDocument.model_validate(found["ProblemDocument"]["example"])
    for path, operations in document["paths"].items():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                schemas.BatchRequest.model_validate(body["example"])
                assert path in ("/api/v1/batches", "/api/v1/batch/generate")


def responses() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, status, response) of every operation."""
    for path, operations in json.loads(GENERATED)["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                yield method, path, status, response


def has_example(media: dict[str, Any], schemas_found: dict[str, Any]) -> bool:
    if "example" in media or media.get("examples"):
        return True
    ref = media.get("schema", {}).get("$ref", "")
    return "example" in schemas_found.get(ref.rpartition("/")[2], {})


def test_every_answer_of_every_operation_has_an_example() -> None:
    found = json.loads(GENERATED)["components"]["schemas"]
    missing = []
    for method, path, status, response in responses():
        content = response.get("content", {})
        headers = response.get("headers", {})
        if not content and not headers:
            missing.append(f"{method} {path} {status}: nothing to show")
        missing += [
            f"{method} {path} {status} {media_type}"
            for media_type, media in content.items()
            if not has_example(media, found)
        ]
        missing += [
            f"{method} {path} {status} header {name}"
            for name, header in headers.items()
            if "example" not in header
        ]
    assert missing == []


def raised_problem_types() -> set[str]:
    """The problem types the gateway's code raises (each Problem names its slug)."""
    text = "".join(path.read_text() for path in GATEWAY_SOURCE.rglob("*.py"))
    return {problems.TYPE_BASE + slug for slug in re.findall(r'slug="([a-z-]+)"', text)}


def test_every_problem_example_is_of_its_status_and_a_type_the_gateway_raises() -> None:
    raised = raised_problem_types()
    wrong = []
    for method, path, status, response in responses():
        media = response.get("content", {}).get(problems.MEDIA_TYPE)
        if media is None:
            continue
        if not media.get("examples"):
            wrong.append(f"{method} {path} {status}: no example")
        for name, example in media.get("examples", {}).items():
            document = problems.ProblemDocument.model_validate(example["value"])
            if str(document.status) != status or document.type not in raised:
                wrong.append(f"{method} {path} {status}: {name} is {document.type}")
    assert wrong == []


def test_errors_are_documented_as_the_problem_documents_the_api_answers() -> None:
    document = json.loads(GENERATED)
    assert "HTTPValidationError" not in json.dumps(document)
    for method, path, status, response in responses():
        if path.startswith("/api/") and status[0] in "45":
            assert list(response["content"]) == [problems.MEDIA_TYPE], (method, path, status)
        if path.startswith("/api/"):
            assert {"403", "503"} <= {
                s for m, p, s, _ in responses() if (m, p) == (method, path)
            }, (method, path)
