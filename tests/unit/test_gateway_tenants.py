"""The gateway serves only what the operator accepted of a Tenant: never a namespace the
Tenant does not hold, and a tenant whose region is down stays served."""

from __future__ import annotations

import datetime
from typing import Any

from imagegen import resources
from imagegen.gateway import tenants
from tests import builders

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)


def ready(status: str = "True", reason: str = "PoolsReconciled") -> dict[str, Any]:
    return {
        "type": "Ready", "status": status, "reason": reason, "message": "m",
        "lastTransitionTime": NOW, "observedGeneration": 1,
    }  # fmt: skip


def acme(namespace: str = "tenant-acme", *, generation: int = 1, observed: int | None = 1,
         condition: dict[str, Any] | None = None) -> Any:  # fmt: skip
    built = builders.make_tenant("acme").namespace(namespace).generation(generation)
    if observed is not None:
        built = built.status(observed_generation=observed, conditions=[condition or ready()])
    return resources.Tenant.from_dict(built.obj())


def test_a_tenant_the_operator_has_accepted_is_served() -> None:
    directory = tenants.TenantDirectory()
    directory.replace([acme()])
    found = directory.get("acme")
    assert found is not None
    assert found.namespace == "tenant-acme"


def test_a_tenant_never_reconciled_is_not_served() -> None:
    directory = tenants.TenantDirectory()
    directory.replace([acme(observed=None)])
    assert directory.get("acme") is None


def test_a_tenant_refused_for_its_namespace_is_not_served_and_says_why() -> None:
    directory = tenants.TenantDirectory()
    directory.replace([acme()])
    taken = ready("False", "NamespaceOwnedByAnotherTenant")
    directory.apply("MODIFIED", acme("tenant-other", generation=2, observed=2, condition=taken))
    assert directory.get("acme") is None
    assert (directory.refusal("acme") or "").startswith("NamespaceOwnedByAnotherTenant:")


def test_an_edit_not_yet_reconciled_keeps_the_last_accepted_namespace() -> None:
    directory = tenants.TenantDirectory()
    directory.replace([acme()])
    directory.apply("MODIFIED", acme("tenant-other", generation=2, observed=1))
    found = directory.get("acme")
    assert found is not None
    assert found.namespace == "tenant-acme"


def test_a_tenant_whose_region_is_down_stays_served() -> None:
    directory = tenants.TenantDirectory()
    directory.replace([acme(condition=ready("False", "RegionUnreachable"))])
    assert directory.get("acme") is not None
    assert directory.refusal("acme") is None


def test_a_deleted_tenant_is_gone() -> None:
    directory = tenants.TenantDirectory()
    directory.replace([acme()])
    directory.apply("DELETED", acme())
    assert directory.get("acme") is None
