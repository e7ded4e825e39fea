"""The one way an ImageBatch's status is written, and how a batch's Tenant is read.

Status is merge-patched whole (every field set), by the handlers at admission and dispatch
and by the region reporters afterwards; the operator is its only writer. Each write is
recorded for the metrics (`observe.batch_status`).
"""

from __future__ import annotations

import lightkube
from lightkube.types import PatchType

from imagegen import resources
from imagegen.api import imagebatch, tenant
from imagegen.controller import observe
from imagegen.kube import objects


async def write_status(
    *,
    management: lightkube.AsyncClient,
    batch: imagebatch.ImageBatch,
    status: imagebatch.ImageBatchStatus,
) -> None:
    """Patch the batch's status to `status`."""
    assert batch.metadata.name is not None
    await management.patch(
        resources.ImageBatch.Status,
        batch.metadata.name,
        {"status": status.model_dump(mode="json", exclude_none=True)},
        namespace=batch.metadata.namespace,
        patch_type=PatchType.MERGE,
    )
    observe.batch_status(batch=batch, status=status)


async def tenant_named(*, management: lightkube.AsyncClient, name: str) -> tenant.Tenant | None:
    """The Tenant, or None when there is none of that name."""
    found = await objects.get_or_none(management, resources.Tenant, name)
    return None if found is None else tenant.Tenant.model_validate(resources.as_dict(found))


async def still_there(*, management: lightkube.AsyncClient, batch: imagebatch.ImageBatch) -> bool:
    """Whether the batch still exists and is not being deleted (checked before its items
    are enqueued again: a batch whose deletion went by unseen must not come back)."""
    assert batch.metadata.name is not None
    found = await objects.get_or_none(
        management, resources.ImageBatch, batch.metadata.name, namespace=batch.metadata.namespace
    )
    return (
        found is not None
        and found.metadata.uid == batch.metadata.uid
        and found.metadata.deletionTimestamp is None
    )
