"""Admission of an ImageBatch against its Tenant. Pure: the caller reads, this decides.

A refusal is final (phase Rejected, never retried): the reason is a CamelCase word for
machines, the message names the field for people.
"""

from __future__ import annotations

import dataclasses

from imagegen.api import imagebatch, tenant


@dataclasses.dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a batch may not run."""

    reason: str
    message: str


def check(
    *,
    batch: imagebatch.ImageBatch,
    owner: tenant.Tenant | None,
    active_batches: int,
    namespace_holder: str | None,
) -> Refusal | None:
    """None when the batch may run; else why not. active_batches excludes this batch;
    namespace_holder is the tenant the batch's namespace is labelled for."""
    name = batch.spec.tenant
    if owner is None:
        return Refusal(reason="TenantNotFound", message=f"spec.tenant: no Tenant named {name!r}")
    if owner.spec.namespace != batch.metadata.namespace:
        return Refusal(
            reason="NamespaceNotOwned",
            message=f"metadata.namespace: tenant {name!r} submits batches in namespace"
            f" {owner.spec.namespace!r}, not {batch.metadata.namespace!r}",
        )
    if namespace_holder != name:
        # The Tenant names the namespace, but the namespace is not the Tenant's: another
        # tenant's (or nobody's) namespace must not run work charged to this one.
        held = f"belongs to tenant {namespace_holder!r}" if namespace_holder else "is not held"
        return Refusal(
            reason="NamespaceNotHeld",
            message=f"metadata.namespace: namespace {batch.metadata.namespace!r} {held};"
            f" tenant {name!r} may run batches only in a namespace labelled for it",
        )
    limit = owner.spec.quota.max_batch_size
    if len(batch.spec.items) > limit:
        return Refusal(
            reason="BatchTooLarge",
            message=f"spec.items: {len(batch.spec.items)} items; tenant {name!r} allows at"
            f" most {limit} per batch (spec.quota.maxBatchSize)",
        )
    allowed = [provider.name for provider in owner.spec.workers.providers]
    for index, item in enumerate(batch.spec.items):
        field = f"spec.items[{index}].provider" if item.provider else "spec.defaults.provider"
        asked = item.provider or batch.spec.defaults.provider
        if asked not in allowed:
            return Refusal(
                reason="ProviderNotAllowed",
                message=f"{field}: {asked!r} is not among tenant {name!r}'s providers"
                f" ({', '.join(allowed)}; spec.workers.providers)",
            )
    active_limit = owner.spec.quota.max_active_batches
    if active_batches >= active_limit:
        return Refusal(
            reason="TooManyActiveBatches",
            message=f"tenant {name!r} already has {active_batches} active batch(es);"
            f" its quota allows {active_limit} (spec.quota.maxActiveBatches)",
        )
    return None
