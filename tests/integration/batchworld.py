"""ImageBatches through the running operator, as tests drive them: a Tenant in one region,
batches created as CRs in its namespace, their status read and waited on."""

from __future__ import annotations

from typing import Any

from imagegen import resources
from tests import builders
from tests.integration import waiting
from tests.integration.tenantworld import World, unique_name


def tenant_in(world: World, *, region: str, prefix: str, **quota: int) -> str:
    """A priority Tenant with a dedicated pool in `region` alone, reconciled; `quota`
    overrides its defaults (max_active_batches=50, ...)."""
    name = unique_name(prefix)
    tenant = builders.make_tenant(name).tier("priority").namespace(f"tenant-{name}")
    world.create(
        tenant.regions(region).quota(**quota).obj() if quota else tenant.regions(region).obj()
    )
    world.wait_reconciled(name)
    return name


def submit(world: World, *, tenant: str, items: int, size: str = "64x64") -> str:
    """Create a batch of `items` images of `size` in the tenant's namespace; its name."""
    name = unique_name("batch")
    world.create(
        builders.make_batch(name, tenant=tenant)
        .namespace(f"tenant-{tenant}")
        .items(items, size=size)
        .obj()
    )
    return name


def batch(world: World, *, tenant: str, name: str) -> dict[str, Any]:
    """The ImageBatch as the apiserver has it."""
    found: dict[str, Any] = world.kube.get(
        resources.ImageBatch, name, namespace=f"tenant-{tenant}"
    ).to_dict()
    return found


def status(world: World, *, tenant: str, name: str) -> dict[str, Any]:
    """The batch's status (empty before the operator writes one)."""
    written: dict[str, Any] = batch(world, tenant=tenant, name=name).get("status") or {}
    return written


def condition(written: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition `type_` of a status, if it has one."""
    return next((c for c in written.get("conditions") or [] if c["type"] == type_), None)


def wait_phase(
    world: World, *, tenant: str, name: str, phase: str, timeout: float = 90
) -> dict[str, Any]:
    """The batch's status once its phase is `phase`."""
    return waiting.until(
        lambda: (s := status(world, tenant=tenant, name=name)).get("phase") == phase and s,
        timeout=timeout,
        what=f"{name} {phase}",
    )
