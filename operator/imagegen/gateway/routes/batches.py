"""Submit, read, list and cancel batches."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import re
import secrets
from typing import Annotated, Any

import fastapi
import lightkube
import pydantic
import redis.exceptions
from fastapi import responses

from imagegen.gateway import (
    idempotency,
    problems,
    requestcontext,
    schemas,
    services,
    tenants,
    translate,
)
from imagegen.gateway.webhooks import ssrf
from imagegen.metrics import gateway as catalogue

logger = logging.getLogger(__name__)

router = fastapi.APIRouter(tags=["batches"])

_SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}},
    }
}
_SUBMIT_ERRORS = problems.responses_doc(400, 401, 408, 409, 413, 422, 429, 503)
_LIST_ERRORS = problems.responses_doc(400, 401, 422, 429)
WEBHOOK_RECHECK_SECONDS = 5
"""Retry-After of a submission whose webhook host could not be resolved just now."""


async def submit(
    request: fastapi.Request,
    found: services.ServicesDep,
    tenant: services.Tenant,
    idempotency_key: Annotated[str | None, fastapi.Header(max_length=255)] = None,
) -> responses.Response:
    """Create an ImageBatch in the tenant's namespace; 202 with its Location."""
    try:
        body = await _json_body(request, read_seconds=found.settings.timeouts.body_read_seconds)
        submission = schemas.BatchRequest.model_validate(body)
    except problems.Problem:
        # A refused body (malformed, too deep, too large, too slow) still counts as a
        # request against the limit: otherwise bad bodies cost the tenant nothing.
        await services.charge(request, found, tenant)
        raise
    except pydantic.ValidationError as error:
        await services.charge(request, found, tenant)
        raise problems.from_validation(error) from error
    await services.charge(request, found, tenant, images=len(submission.items))
    request_id = str(getattr(request.state, requestcontext.STATE))
    if idempotency_key is None:
        return await _create(found, tenant=tenant, submission=submission, request_id=request_id)
    return await _create_once(
        found,
        tenant=tenant,
        key=idempotency_key,
        body=body,
        submission=submission,
        request_id=request_id,
    )


async def _create_once(
    found: services.Services,
    *,
    tenant: tenants.TenantView,
    key: str,
    body: Any,
    submission: schemas.BatchRequest,
    request_id: str,
) -> responses.Response:
    """Create under an Idempotency-Key: replay, refuse, or create and keep the answer."""
    fingerprint = idempotency.fingerprint(method="POST", path=translate.API_PREFIX, body=body)
    state, stored = await found.idempotency.claim(
        tenant=tenant.name, key=key, fingerprint=fingerprint
    )
    if state is idempotency.State.REPLAY and stored is not None:
        catalogue.IDEMPOTENT_REPLAYS.labels(tenant.name).inc()
        return responses.Response(stored.body, status_code=stored.status, headers=stored.headers)
    if state is idempotency.State.MISMATCH:
        raise _key_reused()
    if state is idempotency.State.IN_FLIGHT:
        raise problems.Problem(
            status=409,
            slug="idempotency-in-flight",
            detail="a request with this Idempotency-Key is still being processed",
        )
    try:
        response = await _create(
            found,
            tenant=tenant,
            submission=submission,
            request_id=request_id,
            once=Once(
                name=idempotency.batch_name(tenant=tenant.name, key=key), fingerprint=fingerprint
            ),
        )
    except BaseException:
        # Nothing was created (or the answer is an error): a retry may go ahead.
        await found.idempotency.abandon(tenant=tenant.name, key=key)
        raise
    kept = {name: response.headers[name] for name in ("location", "content-type")}
    try:
        await found.idempotency.finish(
            tenant=tenant.name,
            key=key,
            fingerprint=fingerprint,
            response=idempotency.StoredResponse(
                status=response.status_code, headers=kept, body=bytes(response.body)
            ),
        )
    except redis.exceptions.RedisError as error:
        # The batch exists: say so. A retry finds it by its name and gets it replayed.
        logger.warning("Idempotency-Key answer not kept, the batch's name stands in: %s", error)
    return response


@dataclasses.dataclass(frozen=True, kw_only=True)
class Once:
    """Create under an Idempotency-Key: this name, this request's fingerprint."""

    name: str
    fingerprint: str


async def _replay(
    found: services.Services, *, tenant: tenants.TenantView, once: Once
) -> responses.JSONResponse:
    """The batch an earlier request with the same key created, answered as it was then."""
    obj = await found.batches.get(namespace=tenant.namespace, name=once.name, tenant=tenant.name)
    annotations = (obj or {}).get("metadata", {}).get("annotations") or {}
    if obj is None or annotations.get(translate.FINGERPRINT_ANNOTATION) != once.fingerprint:
        raise _key_reused()
    catalogue.IDEMPOTENT_REPLAYS.labels(tenant.name).inc()
    return _accepted(obj)


def _key_reused() -> problems.Problem:
    return problems.Problem(
        status=422,
        slug="idempotency-key-reused",
        detail="Idempotency-Key was used with a different request body",
        errors=[problems.field_error(["Idempotency-Key"], "used with another body")],
    )


# The path and the collection's own: one handler, two documented operations.
for _path, _operation, _summary in (
    ("/api/v1/batch/generate", "generate_batch", "Submit a batch of 1 to 100 images"),
    (translate.API_PREFIX, "submit_batch", "Submit a batch (as POST /api/v1/batch/generate)"),
):
    router.add_api_route(
        _path,
        submit,
        methods=["POST"],
        status_code=202,
        response_model=schemas.BatchObject,
        responses=_SUBMIT_ERRORS,
        openapi_extra=_SUBMIT_DOC,
        summary=_summary,
        operation_id=_operation,
    )


@router.get(
    translate.API_PREFIX,
    response_model=schemas.BatchList,
    responses=_LIST_ERRORS,
    summary="List the tenant's batches, a page at a time",
)
async def list_batches(
    found: services.ServicesDep,
    tenant: services.Admitted,
    limit: Annotated[int | None, fastapi.Query(ge=1, le=500)] = None,
    cursor: Annotated[str | None, fastapi.Query(max_length=400)] = None,
) -> schemas.BatchList:
    """The tenant's batches in id order; pass next_cursor back as ?cursor= for more."""
    after = _decode_cursor(cursor) if cursor else None
    page, last = await found.batches.page(
        namespace=tenant.namespace,
        tenant=tenant.name,
        after=after,
        limit=limit or found.settings.page_size,
    )
    return schemas.BatchList(
        data=[translate.batch_object(obj) for obj in page],
        next_cursor=_encode_cursor(last) if last else None,
    )


@router.get(
    translate.API_PREFIX + "/{batch_id}",
    response_model=schemas.BatchObject,
    responses=problems.responses_doc(401, 404, 429),
    summary="One batch",
)
async def get_batch(
    batch_id: str, found: services.ServicesDep, tenant: services.Admitted
) -> schemas.BatchObject:
    """The batch as its CR says now."""
    return translate.batch_object(await find(found, tenant, batch_id))


@router.post(
    translate.API_PREFIX + "/{batch_id}/cancel",
    response_model=schemas.BatchObject,
    status_code=202,
    responses=problems.responses_doc(401, 404, 409, 429),
    summary="Cancel a batch: queued items are removed, running ones dropped",
)
async def cancel_batch(
    batch_id: str, found: services.ServicesDep, tenant: services.Admitted
) -> schemas.BatchObject:
    """Set spec.cancel on the CR; the operator stops the batch and reports Cancelled."""
    obj = await find(found, tenant, batch_id)
    if translate.is_terminal(obj):
        phase = obj["status"]["phase"]
        raise problems.Problem(
            status=409, slug="batch-finished", detail=f"batch already finished ({phase})"
        )
    patched = await found.batches.cancel(namespace=tenant.namespace, name=batch_id)
    return translate.batch_object(patched)


async def find(
    found: services.Services, tenant: tenants.TenantView, batch_id: str
) -> dict[str, Any]:
    """The tenant's batch, or 404: another tenant's batch is as absent as a missing one."""
    obj = None
    if _NAME.fullmatch(batch_id):
        obj = await found.batches.get(namespace=tenant.namespace, name=batch_id, tenant=tenant.name)
    if obj is None:
        raise problems.Problem(status=404, slug="batch-not-found", detail=f"no batch {batch_id!r}")
    return obj


_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A Kubernetes object name; anything else cannot be a batch, and is not sent on."""


def _encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise _bad_cursor() from error
    if not _NAME.fullmatch(name):
        raise _bad_cursor()
    return name


def _bad_cursor() -> problems.Problem:
    return problems.Problem(
        status=400,
        slug="bad-cursor",
        detail="cursor is not one this API returned",
        errors=[problems.field_error(["cursor"], "not a cursor from next_cursor")],
    )


async def _json_body(request: fastapi.Request, *, read_seconds: float) -> Any:
    try:
        async with asyncio.timeout(read_seconds):
            raw = await request.body()
    except TimeoutError as error:
        raise problems.Problem(
            status=408, slug="request-timeout", detail="request body not received in time"
        ) from error
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise problems.Problem(
            status=400,
            slug="malformed-json",
            detail=f"request body is not valid JSON: {error}",
            errors=[problems.field_error([], "not valid JSON")],
        ) from error
    except RecursionError as error:
        # Nesting deeper than the parser's stack: no valid batch is nested more than a
        # few levels, so this is a malformed body, not a server fault.
        raise problems.Problem(
            status=400,
            slug="malformed-json",
            detail="request body is nested too deeply",
            errors=[problems.field_error([], "nested too deeply")],
        ) from error


async def _check_webhook(found: services.Services, url: str) -> None:
    """422 naming webhook.url unless the URL is safe to call (the SSRF guard); 503 with
    Retry-After when the resolver gave no verdict in time (the client may retry)."""
    try:
        # The guard's own timeout, not one around it: a second timer of the same length
        # would race it and turn a slow resolver into a permanent 422.
        await ssrf.check_url(
            url,
            allowlist=found.settings.webhook_allowlist,
            resolve_timeout_seconds=found.settings.timeouts.webhook_check_seconds,
        )
    except ssrf.ResolutionUnavailable as error:
        # The resolver failed for a moment or was slow: nothing is wrong with the URL yet.
        raise problems.Problem(
            status=503,
            slug="webhook-host-unresolved",
            detail=f"webhook.url could not be checked now: {error}; retry later",
            headers={"Retry-After": str(WEBHOOK_RECHECK_SECONDS)},
        ) from error
    # ValueError besides UnsafeWebhookURL: a URL too odd to parse or to encode as a host
    # name (schemathesis found those) is as unsafe as a private one.
    except ValueError as error:
        reason = str(error)
        raise problems.Problem(
            status=422,
            slug="unsafe-webhook-url",
            detail=f"webhook.url refused: {reason}",
            errors=[problems.field_error(["webhook", "url"], reason)],
        ) from error


async def _create(
    found: services.Services,
    *,
    tenant: tenants.TenantView,
    submission: schemas.BatchRequest,
    request_id: str,
    once: Once | None = None,
) -> responses.JSONResponse:
    """Create the CR, carrying the request id as its correlation id, and answer 202 with
    the batch object and its Location; under an Idempotency-Key (`once`), replay the batch
    an earlier request with the key created."""
    if submission.webhook is not None:
        await _check_webhook(found, submission.webhook.url)
    name = once.name if once else f"batch-{secrets.token_hex(6)}"
    try:
        obj = translate.custom_resource(
            submission,
            name=name,
            tenant=tenant.name,
            namespace=tenant.namespace,
            correlation_id=request_id,
            fingerprint=once.fingerprint if once else None,
        )
    except pydantic.ValidationError as error:
        raise problems.from_validation(error) from error
    try:
        created = await found.batches.create(obj)
    except lightkube.ApiError as error:
        if error.status.code == 409 and once is not None:
            return await _replay(found, tenant=tenant, once=once)
        if error.status.code == 422:
            # The apiserver's own rules (CEL) caught what the models could not.
            raise problems.Problem(
                status=422, slug="validation", detail=str(error.status.message)
            ) from error
        raise
    catalogue.BATCHES_CREATED.labels(tenant.name).inc()
    catalogue.IMAGES_REQUESTED.labels(tenant.name).inc(len(submission.items))
    logger.info("created batch %s with %d items", name, len(submission.items))
    return _accepted(created)


def _accepted(obj: dict[str, Any]) -> responses.JSONResponse:
    """202 with the batch object and its Location."""
    batch = translate.batch_object(obj)
    return responses.JSONResponse(
        batch.model_dump(mode="json"), status_code=202, headers={"Location": batch.links["self"]}
    )
