"""The Tenant's namespace in the management cluster: made if missing, never taken from
someone else."""

from __future__ import annotations

import dataclasses

import lightkube
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen.kube import objects
from imagegen.render import labels


@dataclasses.dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why the namespace cannot be the Tenant's: a condition reason and message."""

    reason: str
    message: str


async def check(
    *, client: lightkube.AsyncClient, name: str, tenant_name: str
) -> tuple[bool, Refusal | None]:
    """Whether the namespace exists, and a refusal when it belongs to another tenant or
    to nobody we know of (we do not adopt namespaces that were not handed over)."""
    namespace = await objects.get_or_none(client, core_v1.Namespace, name)
    if namespace is None:
        return False, None
    owner = _owner(namespace)
    if owner == tenant_name:
        return True, None
    if owner is None:
        return True, Refusal(
            reason="NamespaceNotOwned",
            message=f"namespace {name} exists without the label {labels.TENANT}={tenant_name};"
            " label it to hand it to this tenant",
        )
    return True, Refusal(
        reason="NamespaceOwnedByAnotherTenant",
        message=f"namespace {name} belongs to tenant {owner}",
    )


async def create(*, client: lightkube.AsyncClient, name: str, tenant_name: str) -> None:
    """Create the namespace labelled for the tenant."""
    await client.create(
        core_v1.Namespace(
            metadata=meta_v1.ObjectMeta(
                name=name,
                labels={**labels.managed(), labels.TENANT: tenant_name},
            )
        )
    )


async def holds_tenant(*, client: lightkube.AsyncClient, name: str, tenant_name: str) -> bool:
    """Whether the namespace exists, is labelled as the tenant's and is not being deleted."""
    return await holder(client=client, name=name) == tenant_name


async def holder(*, client: lightkube.AsyncClient, name: str) -> str | None:
    """The tenant the namespace is labelled for; None when it is missing, unlabelled or
    being deleted."""
    namespace = await objects.get_or_none(client, core_v1.Namespace, name)
    if namespace is None:
        return None
    terminating = namespace.status is not None and namespace.status.phase == "Terminating"
    return None if terminating else _owner(namespace)


def _owner(namespace: core_v1.Namespace) -> str | None:
    return ((namespace.metadata.labels if namespace.metadata else None) or {}).get(labels.TENANT)
