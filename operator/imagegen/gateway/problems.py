"""Errors as RFC 9457 problem details (application/problem+json), each bad field named.

Every error the gateway answers goes through `Problem`, so clients parse one shape:
`{type, title, status, detail, errors: [{pointer, field, detail}]}` where `pointer` is a
JSON pointer into the request body and `field` the same path dotted.
"""

from __future__ import annotations

import http
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from fastapi import responses

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://imagegen.semantest.io/problems/"


class FieldError(pydantic.BaseModel):
    """One bad field of a request."""

    pointer: str
    """JSON pointer (RFC 6901) to the field in the request body, such as /items/3/size."""
    field: str
    """The same path dotted, such as items.3.size."""
    detail: str
    """What is wrong with it."""


class ProblemDocument(pydantic.BaseModel):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = pydantic.Field(default_factory=list)


class Problem(Exception):  # noqa: N818 (it is the RFC's name for it)
    """An error answer; raise it anywhere in a request, the app turns it into a response."""

    def __init__(
        self,
        *,
        status: int,
        detail: str,
        slug: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or http.HTTPStatus(status).phrase.lower().replace(" ", "-")
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def document(self) -> ProblemDocument:
        return ProblemDocument(
            type=TYPE_BASE + self.slug,
            title=http.HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )

    def response(self) -> responses.JSONResponse:
        return responses.JSONResponse(
            self.document().model_dump(),
            status_code=self.status,
            headers=self.headers,
            media_type=MEDIA_TYPE,
        )


def backend_unavailable() -> Problem:
    """503: Kubernetes or Redis did not answer; the client may retry in a second."""
    return Problem(
        status=503,
        slug="backend-unavailable",
        detail="the gateway could not reach Kubernetes or Redis; retry later",
        headers={"Retry-After": "1"},
    )


def field_error(location: Sequence[str | int], detail: str) -> FieldError:
    """A FieldError at a path such as ("items", 3, "size")."""
    parts = [str(part) for part in location]
    pointer = "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)
    return FieldError(pointer=pointer, field=".".join(parts), detail=detail)


def from_validation(error: pydantic.ValidationError) -> Problem:
    """422 naming every field pydantic refused, in the request's own (wire) names."""
    errors = [_field_error(line) for line in error.errors(include_url=False)]
    fields = ", ".join(sorted({e.field or "(body)" for e in errors}))
    return Problem(status=422, slug="validation", detail=f"invalid fields: {fields}", errors=errors)


def _field_error(line: Mapping[str, Any]) -> FieldError:
    location = list(line["loc"])
    message = str(line["msg"])
    if line["type"] == "extra_forbidden":
        message = "unknown field"
    return field_error(location, message)


SCHEMA_REF = "#/components/schemas/ProblemDocument"


def responses_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries saying these statuses answer with a problem document
    (the schema is added to the components by gateway.openapi)."""
    return {
        status: {
            "description": http.HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": SCHEMA_REF}}},
        }
        for status in statuses
    }
