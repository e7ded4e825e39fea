"""The committed OpenAPI document is what the gateway generates, and documents what the
API answers: problem documents for errors, the submission body by reference."""

import json
import pathlib

from imagegen.gateway import app, openapi, settings

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
