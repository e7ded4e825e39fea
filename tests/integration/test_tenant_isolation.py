"""One tenant cannot reach another's namespace: a Tenant pointed at a namespace another
tenant holds gets none of its batches admitted there, and the gateway serves its key
nothing until the spec is fixed."""

from __future__ import annotations

from typing import Any

import httpx

from imagegen import resources
from tests import builders
from tests.integration import waiting
from tests.integration.gatewayworld import GatewayWorld
from tests.integration.tenantworld import unique_name


def ready_reason(gw: GatewayWorld, name: str) -> str | None:
    conditions = (gw.world.tenant(name).get("status") or {}).get("conditions") or []
    return next((c["reason"] for c in conditions if c["type"] == "Ready"), None)


def test_a_tenant_pointed_at_another_tenants_namespace_is_refused_there(
    gateway_world: GatewayWorld,
) -> None:
    owner, _ = gateway_world.ready_tenant("holder")
    intruder, key = gateway_world.ready_tenant("intruder")
    gateway_world.patch_tenant(intruder, {"namespace": f"tenant-{owner}"})
    waiting.until(
        lambda: ready_reason(gateway_world, intruder) == "NamespaceOwnedByAnotherTenant",
        timeout=60,
        what="the intruder's Tenant refused",
    )

    with gateway_world.client(key) as http:

        def refused() -> httpx.Response | None:
            reply = http.get("/api/v1/batches")
            return reply if reply.status_code == 403 else None

        answer = waiting.until(refused, timeout=30, what="the gateway refusing the intruder")
    assert answer.json()["type"].endswith("/tenant-not-ready")

    name = unique_name("sneak")
    gateway_world.world.create(
        builders.make_batch(name, tenant=intruder).namespace(f"tenant-{owner}").obj()
    )

    def status() -> dict[str, Any] | None:
        obj = gateway_world.world.kube.get(
            resources.ImageBatch, name, namespace=f"tenant-{owner}"
        ).to_dict()
        found: dict[str, Any] | None = obj.get("status")
        return found if found and found.get("phase") else None

    rejected = waiting.until(status, timeout=60, what="the batch decided")
    assert rejected["phase"] == "Rejected"
    assert rejected["conditions"][0]["reason"] == "NamespaceNotHeld"
    assert rejected["message"].startswith("metadata.namespace:")
