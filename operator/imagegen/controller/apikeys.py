"""Each Tenant's API key: a Secret in its namespace for the tenant to read, and an index
of key digests for the gateway, which never needs the keys themselves.

Rotation: set the Tenant annotation `imagegen.semantest.io/rotate-api-key` to a new value
(a date, a ticket number). The operator makes a new key and keeps the old one valid for
the configured grace period, so clients can switch without an outage.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import json
import secrets
from typing import Any

import lightkube
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen.api import meta
from imagegen.kube import objects
from imagegen.render import labels

KEY_PREFIX = "igk_"
ROTATE_ANNOTATION = f"{meta.GROUP}/rotate-api-key"
_ROTATION_SEEN = f"{meta.GROUP}/rotation"
_PREVIOUS_EXPIRES = f"{meta.GROUP}/previous-expires-at"
INDEX_LABEL = f"{meta.GROUP}/api-key-index"
CURRENT, PREVIOUS = "api-key", "previous-api-key"


def new_key() -> str:
    """A fresh key: the prefix makes leaked keys easy to find by secret scanners."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    """SHA-256 of a key, as hex: what the gateway looks keys up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def secret_name(tenant_name: str) -> str:
    """Name of the Secret holding a tenant's key(s)."""
    return f"{tenant_name}-api-key"


def index_name(tenant_name: str) -> str:
    """Name of the ConfigMap with a tenant's key digests."""
    return f"api-keys-{tenant_name}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyState:
    """The active keys of a tenant, decoded from its Secret."""

    current: str
    previous: str | None = None
    previous_expires_at: datetime.datetime | None = None
    rotation: str = ""


def plan(
    *, existing: KeyState | None, rotation: str, now: datetime.datetime, grace: datetime.timedelta
) -> KeyState:
    """The keys the tenant should have now: made on first use, rotated when the
    annotation changed, and the old key dropped once its grace period has passed."""
    if existing is None:
        return KeyState(current=new_key(), rotation=rotation)
    if rotation != existing.rotation:
        return KeyState(
            current=new_key(),
            previous=existing.current,
            previous_expires_at=now + grace,
            rotation=rotation,
        )
    if existing.previous_expires_at is not None and now >= existing.previous_expires_at:
        return KeyState(current=existing.current, rotation=existing.rotation)
    return existing


async def reconcile(
    *,
    client: lightkube.AsyncClient,
    tenant_name: str,
    tenant_uid: str,
    namespace: str,
    index_namespace: str,
    rotation: str,
    grace: datetime.timedelta,
    now: datetime.datetime,
) -> bool:
    """Make the Secret and the digest index match the plan; True when anything was written."""
    existing = await _read_state(client=client, name=secret_name(tenant_name), namespace=namespace)
    wanted = plan(existing=existing, rotation=rotation, now=now, grace=grace)
    index = _index_configmap(
        tenant_name=tenant_name, tenant_uid=tenant_uid, namespace=index_namespace, keys=wanted
    )
    live_index = await objects.get_or_none(
        client, core_v1.ConfigMap, index_name(tenant_name), namespace=index_namespace
    )
    if wanted == existing and live_index is not None and live_index.data == index.data:
        return False
    if wanted != existing:
        await client.apply(
            _secret(
                tenant_name=tenant_name, tenant_uid=tenant_uid, namespace=namespace, keys=wanted
            ),
            force=True,
        )
    await client.apply(index, force=True)
    return True


async def delete_index(*, client: lightkube.AsyncClient, tenant_name: str, namespace: str) -> None:
    """Remove the tenant's digest index, so the gateway stops accepting its keys."""
    await objects.delete_if_present(
        client, core_v1.ConfigMap, index_name(tenant_name), namespace=namespace
    )


async def delete_secret(*, client: lightkube.AsyncClient, tenant_name: str, namespace: str) -> None:
    """Remove the tenant's key Secret from its namespace."""
    await objects.delete_if_present(
        client, core_v1.Secret, secret_name(tenant_name), namespace=namespace
    )


async def _read_state(
    *, client: lightkube.AsyncClient, name: str, namespace: str
) -> KeyState | None:
    secret = await objects.get_or_none(client, core_v1.Secret, name, namespace=namespace)
    if secret is None or not secret.data or CURRENT not in secret.data:
        return None
    annotations = (secret.metadata.annotations if secret.metadata else None) or {}
    expires = annotations.get(_PREVIOUS_EXPIRES)
    previous = secret.data.get(PREVIOUS)
    return KeyState(
        current=base64.b64decode(secret.data[CURRENT]).decode(),
        previous=base64.b64decode(previous).decode() if previous else None,
        previous_expires_at=datetime.datetime.fromisoformat(expires) if expires else None,
        rotation=annotations.get(_ROTATION_SEEN, ""),
    )


def _secret(*, tenant_name: str, tenant_uid: str, namespace: str, keys: KeyState) -> core_v1.Secret:
    data = {CURRENT: keys.current}
    annotations = {_ROTATION_SEEN: keys.rotation}
    if keys.previous is not None and keys.previous_expires_at is not None:
        data[PREVIOUS] = keys.previous
        annotations[_PREVIOUS_EXPIRES] = keys.previous_expires_at.isoformat()
    return core_v1.Secret(
        metadata=meta_v1.ObjectMeta(
            name=secret_name(tenant_name),
            namespace=namespace,
            labels=labels.tenant_labels(name=tenant_name, uid=tenant_uid),
            annotations=annotations,
        ),
        type="Opaque",
        # data, not stringData: server-side apply tracks ownership of data's keys, so a
        # previous key left out of the next apply is removed from the Secret.
        data={key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    )


def _index_configmap(
    *, tenant_name: str, tenant_uid: str, namespace: str, keys: KeyState
) -> core_v1.ConfigMap:
    entries: dict[str, Any] = {digest(keys.current): {"tenant": tenant_name, "expiresAt": None}}
    if keys.previous is not None and keys.previous_expires_at is not None:
        entries[digest(keys.previous)] = {
            "tenant": tenant_name,
            "expiresAt": keys.previous_expires_at.isoformat(),
        }
    return core_v1.ConfigMap(
        metadata=meta_v1.ObjectMeta(
            name=index_name(tenant_name),
            namespace=namespace,
            labels={**labels.tenant_labels(name=tenant_name, uid=tenant_uid), INDEX_LABEL: "true"},
        ),
        data={key: json.dumps(value, sort_keys=True) for key, value in entries.items()},
    )
