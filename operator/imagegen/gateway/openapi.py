"""The OpenAPI document FastAPI generates, completed with the schemas our routes name by
reference (the problem document, the submission body read by hand), and written to
docs/openapi.json, which is committed and checked by a unit test."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import fastapi
import pydantic
from fastapi import openapi as fastapi_openapi

from imagegen.gateway import openapicontract, problems, schemas

REF_TEMPLATE = "#/components/schemas/{model}"


def generator(app: fastapi.FastAPI) -> Callable[[], dict[str, Any]]:
    """A replacement for app.openapi that adds our referenced schemas, cached."""

    def generate() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = fastapi_openapi.utils.get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            component_schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in (schemas.BatchRequest, problems.ProblemDocument):
                component_schemas.update(_schemas(model))
            app.openapi_schema = openapicontract.complete(document)
        return app.openapi_schema

    return generate


def _schemas(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    found: dict[str, Any] = schema.pop("$defs", {})
    found[model.__name__] = schema
    return found


def render(app: fastapi.FastAPI) -> str:
    """The document as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def write(app: fastapi.FastAPI, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(app))
