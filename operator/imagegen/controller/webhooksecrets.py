"""Each Tenant's webhook signing secret (`whsec_<base64>`, Standard Webhooks): under the
key `webhook-secret` of its API key Secret, for the tenant to verify deliveries, and
published for the gateway, which signs them.

Least privilege: signing needs the secret itself (a digest will not do, unlike API
keys), so the operator publishes every tenant's secret in one Secret,
`imagegen-webhook-secrets` in its own namespace (tenant name -> secret). The gateway is
granted `get`, `list` and `watch` on that one Secret by resourceNames: it never reads a
tenant namespace, nor any other Secret of the operator's namespace (region kubeconfigs,
Redis passwords).

The key in the tenant's Secret is written with a field manager of its own, so the API
key's server-side apply, which names only the keys it owns, never removes it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Collection, Mapping
from typing import Any

import lightkube
from lightkube.models import meta_v1
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen.api import meta
from imagegen.controller import apikeys
from imagegen.kube import objects
from imagegen.render import labels

FIELD_MANAGER = f"{meta.FIELD_MANAGER}-webhooks"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the marker of the format, not a secret


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes in the Standard Webhooks form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


async def reconcile(
    *,
    client: lightkube.AsyncClient,
    tenant_name: str,
    tenant_uid: str,
    namespace: str,
    published_namespace: str,
) -> bool:
    """Make the tenant's signing secret exist and be published; True when anything was
    written. An existing secret is kept: receivers already verify with it."""
    own = await objects.get_or_none(
        client, core_v1.Secret, apikeys.secret_name(tenant_name), namespace=namespace
    )
    secret = _value(own, meta.WEBHOOK_SECRET_KEY)
    wrote = False
    if secret is None:
        secret = new_secret()
        await client.apply(
            core_v1.Secret(
                metadata=meta_v1.ObjectMeta(
                    name=apikeys.secret_name(tenant_name),
                    namespace=namespace,
                    labels=labels.tenant_labels(name=tenant_name, uid=tenant_uid),
                ),
                data={meta.WEBHOOK_SECRET_KEY: _encode(secret)},
            ),
            field_manager=FIELD_MANAGER,
            force=True,
        )
        wrote = True
    published = await objects.get_or_none(
        client, core_v1.Secret, meta.WEBHOOK_SECRETS, namespace=published_namespace
    )
    if _value(published, tenant_name) != secret:
        await _publish(
            client, namespace=published_namespace, entries={tenant_name: _encode(secret)}
        )
        wrote = True
    return wrote


async def unpublish(
    *, client: lightkube.AsyncClient, tenant_names: Collection[str], namespace: str
) -> None:
    """Withdraw tenants' secrets from the gateway (their own Secrets go with the API key)."""
    if not tenant_names:
        return
    with objects.not_found_ignored():
        await _merge(client, namespace=namespace, entries=dict.fromkeys(tenant_names))


async def published_tenants(*, client: lightkube.AsyncClient, namespace: str) -> set[str]:
    """Names of the tenants whose secrets are published."""
    published = await objects.get_or_none(
        client, core_v1.Secret, meta.WEBHOOK_SECRETS, namespace=namespace
    )
    return set((published.data or {}) if published is not None else ())


async def _publish(
    client: lightkube.AsyncClient, *, namespace: str, entries: dict[str, str]
) -> None:
    with objects.not_found_ignored():
        await _merge(client, namespace=namespace, entries=entries)
        return
    try:
        await client.create(
            core_v1.Secret(
                metadata=meta_v1.ObjectMeta(
                    name=meta.WEBHOOK_SECRETS, namespace=namespace, labels=labels.managed()
                ),
                type="Opaque",
                data=entries,
            )
        )
    except lightkube.ApiError as error:
        if error.status.code != 409:
            raise
        # Another tenant's reconcile created it first.
        await _merge(client, namespace=namespace, entries=entries)


async def _merge(
    client: lightkube.AsyncClient, *, namespace: str, entries: Mapping[str, str | None]
) -> None:
    """A merge patch of these tenants' entries only (None removes one): tenants reconciled
    at the same time never undo each other's."""
    await client.patch(
        core_v1.Secret,
        meta.WEBHOOK_SECRETS,
        {"data": entries},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


def _value(secret: Any, key: str) -> str | None:
    data = (secret.data if secret is not None else None) or {}
    return base64.b64decode(data[key]).decode() if key in data else None


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()
