"""Retention: a finished batch is deleted `ttlSecondsAfterFinished` after its completion
(the batch's own, else its Tenant's `spec.retention.batchTTLSeconds`), as Kubernetes does
for Jobs. Deleting it runs the batch's finalizer, which removes its images and queue keys
(`cleanup`).

One loop lists the batches every `retention_check_seconds` and deletes the expired ones,
so a batch outlives its TTL by at most that interval (plus the deletion itself).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping

import lightkube

from imagegen import resources
from imagegen.api import imagebatch, tenant
from imagegen.controller import batchstatus, bodies
from imagegen.kube import objects

logger = logging.getLogger(__name__)


def ttl_seconds(*, batch: imagebatch.ImageBatch, owner: tenant.Tenant | None) -> int:
    """The batch's retention: its own, else its Tenant's, else the default week."""
    if batch.spec.ttl_seconds_after_finished is not None:
        return batch.spec.ttl_seconds_after_finished
    if owner is not None:
        return owner.spec.retention.batch_ttl_seconds
    return tenant.DEFAULT_BATCH_TTL_SECONDS


def expires_at(
    *, batch: imagebatch.ImageBatch, owner: tenant.Tenant | None
) -> datetime.datetime | None:
    """When the finished batch is due for deletion; None while it is not finished."""
    status = batch.status or imagebatch.ImageBatchStatus()
    if status.phase not in batchstatus.TERMINAL or status.completed_at is None:
        return None
    return status.completed_at + datetime.timedelta(seconds=ttl_seconds(batch=batch, owner=owner))


async def delete_expired(
    *,
    management: lightkube.AsyncClient,
    now: datetime.datetime,
) -> list[str]:
    """Delete every finished batch past its TTL; return their `namespace/name`s."""
    owners: Mapping[str, tenant.Tenant] = {
        str(found.metadata.name): found
        for found in [
            tenant.Tenant.model_validate(resources.as_dict(obj))
            async for obj in management.list(resources.Tenant)
        ]
    }
    deleted = []
    async for obj in management.list(resources.ImageBatch, namespace="*"):
        batch = imagebatch.ImageBatch.model_validate(resources.as_dict(obj))
        if batch.metadata.deletion_timestamp is not None:
            continue
        due = expires_at(batch=batch, owner=owners.get(batch.spec.tenant))
        if due is None or due > now:
            continue
        assert batch.metadata.name is not None
        await objects.delete_if_present(
            management, resources.ImageBatch, batch.metadata.name,
            namespace=batch.metadata.namespace,
        )  # fmt: skip
        name = f"{batch.metadata.namespace}/{batch.metadata.name}"
        logger.info("batch %s: deleted, %s after it finished (its TTL)", name, now - due)
        deleted.append(name)
    return deleted


async def run_forever(
    *,
    management: lightkube.AsyncClient,
    interval_seconds: float,
    clock: Callable[[], datetime.datetime] = bodies.utc_now,
) -> None:
    """`delete_expired` every interval until cancelled; a failed pass is logged."""
    while True:
        try:
            await delete_expired(management=management, now=clock())
        except objects.CALL_ERRORS as error:
            logger.warning("retention pass failed, next in %ss: %s", interval_seconds, error)
        await asyncio.sleep(interval_seconds)
