"""Between the API's bodies and the ImageBatch CR: pure functions, no I/O."""

from __future__ import annotations

import json
from typing import Any

from imagegen.api import imagebatch, meta
from imagegen.gateway import schemas

METADATA_ANNOTATION = f"{meta.GROUP}/metadata"
"""The client's metadata, as JSON: kept on the CR so that the CR stays the only record."""
FINGERPRINT_ANNOTATION = f"{meta.GROUP}/idempotency-fingerprint"
"""The fingerprint of the request that created a batch under an Idempotency-Key."""
API_PREFIX = "/api/v1/batches"


def custom_resource(
    request: schemas.BatchRequest,
    *,
    name: str,
    tenant: str,
    namespace: str,
    correlation_id: str | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """The ImageBatch CR for a submission, validated by the same model as the CRD; the
    correlation id (the gateway's request id) goes into the annotation that the operator
    and the workers log the batch under.

    Raises pydantic.ValidationError only for rules the request models cannot see alone."""
    items = [
        imagebatch.Item(
            id=item.id or f"item-{index}",
            prompt=item.prompt,
            negative_prompt=item.negative_prompt,
            seed=item.seed,
            size=item.size,
            provider=item.provider,
        )
        for index, item in enumerate(request.items)
    ]
    spec = imagebatch.ImageBatchSpec(
        tenant=tenant,
        priority=request.priority,
        defaults=imagebatch.Defaults.model_validate(
            request.defaults.model_dump() if request.defaults else {}
        ),
        items=items,
        webhook=_webhook(request.webhook),
    )
    annotations: dict[str, str] = {}
    if request.metadata:
        annotations[METADATA_ANNOTATION] = json.dumps(request.metadata)
    if correlation_id:
        annotations[meta.CORRELATION_ANNOTATION] = correlation_id
    if fingerprint:
        annotations[FINGERPRINT_ANNOTATION] = fingerprint
    batch = imagebatch.ImageBatch(
        metadata=meta.ObjectMeta(name=name, namespace=namespace, annotations=annotations or None),
        spec=spec,
    )
    dumped: dict[str, Any] = batch.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _webhook(request: schemas.WebhookRequest | None) -> imagebatch.Webhook | None:
    if request is None:
        return None
    if request.events is None:
        return imagebatch.Webhook(url=request.url)
    return imagebatch.Webhook(url=request.url, events=request.events)


def batch_object(obj: dict[str, Any]) -> schemas.BatchObject:
    """The API's view of an ImageBatch CR as the apiserver returns it."""
    batch = imagebatch.ImageBatch.model_validate(obj)
    name = batch.metadata.name or ""
    status = batch.status or imagebatch.ImageBatchStatus()
    counts = status.counts or imagebatch.Counts(total=len(batch.spec.items))
    base = f"{API_PREFIX}/{name}"
    return schemas.BatchObject(
        id=name,
        status=status.phase or "Pending",
        message=status.message,
        progress=status.progress,
        request_counts=schemas.RequestCounts(
            total=counts.total or len(batch.spec.items),
            queued=counts.queued,
            running=counts.running,
            succeeded=counts.succeeded,
            failed=counts.failed,
        ),
        priority=batch.spec.priority,
        cancel_requested=batch.spec.cancel,
        region=status.region,
        created_at=batch.metadata.creation_timestamp,
        deadline=status.deadline,
        completed_at=status.completed_at,
        metadata=_metadata(batch.metadata.annotations),
        items=[
            schemas.ItemResult(
                id=item.id,
                state=item.state,
                error=item.error,
                image=f"{base}/images/{item.id}" if item.state == "Succeeded" else None,
            )
            for item in status.items or []
        ],
        links={
            "self": base,
            "events": f"{base}/events",
            "cancel": f"{base}/cancel",
            "images": f"{base}/images/{{item_id}}",
            "imageList": f"{base}/images",
            "archive": f"{base}/images.zip",
        },
    )


def _metadata(annotations: dict[str, str] | None) -> dict[str, str]:
    raw = (annotations or {}).get(METADATA_ANNOTATION)
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except (ValueError, RecursionError):
        # Someone edited the annotation by hand (nested past the parser's stack, even);
        # the batch is still worth showing.
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def is_terminal(obj: dict[str, Any]) -> bool:
    """Whether the CR's phase is one a batch never leaves."""
    phase = (obj.get("status") or {}).get("phase")
    return phase in imagebatch.TERMINAL_PHASES
