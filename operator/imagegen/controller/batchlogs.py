"""An ImageBatch in the operator's log lines: its tenant, uid, region and correlation id.

The correlation id is the batch's annotation `imagegen.semantest.io/correlation-id` (the
gateway sets it to its request id), else the batch uid; it also rides in every queued
item's payload, so the worker's lines carry it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from imagegen import logs
from imagegen.api import imagebatch, meta


def correlation_id(body: Mapping[str, Any]) -> str | None:
    """The batch's correlation id: its annotation (the gateway's request id), else its uid."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    found: str | None = annotations.get(meta.CORRELATION_ANNOTATION) or metadata.get("uid")
    return found


def bound(body: Mapping[str, Any]) -> contextlib.AbstractContextManager[None]:
    """Bind the batch's tenant, uid, region and correlation id to the lines logged (the
    uid, as the worker knows the batch by nothing else)."""
    metadata = body.get("metadata") or {}
    return logs.bound(
        tenant=(body.get("spec") or {}).get("tenant"),
        batch=metadata.get("uid"),
        region=(body.get("status") or {}).get("region"),
        correlation_id=correlation_id(body),
    )


def correlation_of(batch: imagebatch.ImageBatch) -> str | None:
    """`correlation_id` of a parsed batch."""
    annotations = batch.metadata.annotations or {}
    return annotations.get(meta.CORRELATION_ANNOTATION) or batch.metadata.uid


def bound_batch(
    batch: imagebatch.ImageBatch, *, region: str | None
) -> contextlib.AbstractContextManager[None]:
    """`bound` for a parsed batch, in the region named."""
    return logs.bound(
        tenant=batch.spec.tenant,
        batch=batch.metadata.uid,
        region=region,
        correlation_id=correlation_of(batch),
    )
