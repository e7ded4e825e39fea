"""The committed OpenAPI document is what the gateway generates, and documents what the
API answers: problem documents for errors, the submission body by reference."""

import json
import pathlib

from imagegen.gateway import app, openapi, openapicontract, problems, schemas, settings

DOCUMENT = pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
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
