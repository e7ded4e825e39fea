"""Label keys and values of every object the operator creates, named in one place.

Everything the operator creates carries `app.kubernetes.io/managed-by: imagegen-operator`.
What a Tenant owns also carries the Tenant's name (for people and `kubectl -l`) and uid
(for the operator): owner references do not cross clusters, so these labels are how a
Tenant's objects in a regional cluster are found and cleaned up.
"""

from collections.abc import Mapping
from typing import Final

from imagegen.api import meta, tenant

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
NAME: Final = "app.kubernetes.io/name"
COMPONENT: Final = "app.kubernetes.io/component"
TENANT: Final = f"{meta.GROUP}/tenant"
TENANT_UID: Final = f"{meta.GROUP}/tenant-uid"
REGION: Final = f"{meta.GROUP}/region"
POOL: Final = f"{meta.GROUP}/pool"

OPERATOR: Final = "imagegen-operator"
"""Value of MANAGED_BY."""
WORKER: Final = "imagegen-worker"
"""Value of NAME on worker pool objects."""
WORKER_COMPONENT: Final = "worker"
"""Value of COMPONENT on worker pool objects."""

POD_SECURITY: Final = "pod-security.kubernetes.io"
"""Prefix of the Pod Security admission labels: POD_SECURITY/enforce and so on."""

# The Deployment's selector is immutable: only labels that never change for a pool's
# lifetime belong in it (not the uid, not the tier).
_SELECTOR_KEYS: Final = (TENANT, POOL, REGION)


def managed() -> dict[str, str]:
    """The label of everything the operator creates."""
    return {MANAGED_BY: OPERATOR}


def workers_namespace() -> dict[str, str]:
    """Labels of the workers namespace: ours, and Pod Security `restricted` in every mode.

    Not a Tenant's: every pool of the region lives in it, so no Tenant's cleanup deletes it.
    """
    modes = ("enforce", "audit", "warn")
    return {**managed(), **{f"{POD_SECURITY}/{mode}": "restricted" for mode in modes}}


def tenant_labels(*, name: str, uid: str | None) -> dict[str, str]:
    """Labels of an object one Tenant owns: managed-by, the Tenant's name and uid.

    The uid label is left out when `uid` is None: a Tenant read from a file has no uid
    yet (`imagegen render`), and its manifests are still worth reviewing. The operator
    always renders from a Tenant the apiserver returned, which has one.
    """
    owned = {**managed(), TENANT: name}
    if uid is not None:
        owned[TENANT_UID] = uid
    return owned


def owned_by(*, tenant: tenant.Tenant) -> dict[str, str]:
    """Selector of everything one Tenant owns: managed-by and the Tenant's uid.

    The uid, not the name: a Tenant deleted and created again under the same name must
    neither adopt nor delete what its predecessor left. Raises ValueError without a uid,
    because a selector of managed-by alone would match every Tenant's objects.
    """
    if tenant.metadata.uid is None:
        raise ValueError("metadata.uid: required to select what a Tenant owns")
    return owned_by_uid(uid=tenant.metadata.uid)


def owned_by_uid(*, uid: str) -> dict[str, str]:
    """Selector of everything the Tenant with this uid owns, for when only the uid is left
    (the Tenant is gone, and its objects are found by their labels)."""
    return {**managed(), TENANT_UID: uid}


def dedicated_pool(*, tenant_name: str, tenant_uid: str | None, region: str) -> dict[str, str]:
    """Labels of a Tenant's own worker pool objects in a region."""
    return {
        **tenant_labels(name=tenant_name, uid=tenant_uid),
        **_worker(region=region, pool="dedicated"),
    }


def shared_pool(*, region: str) -> dict[str, str]:
    """Labels of the region's shared worker pool objects; no Tenant owns them."""
    return {**managed(), **_worker(region=region, pool="shared")}


def selector(*, pool_labels: Mapping[str, str]) -> dict[str, str]:
    """The pod selector of a pool with these labels: tenant (if dedicated), pool, region."""
    return {key: pool_labels[key] for key in _SELECTOR_KEYS if key in pool_labels}


def _worker(*, region: str, pool: tenant.Pool) -> dict[str, str]:
    return {NAME: WORKER, COMPONENT: WORKER_COMPONENT, REGION: region, POOL: pool}
