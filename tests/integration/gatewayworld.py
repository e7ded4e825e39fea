"""Tenants with API keys and HTTP clients of the running gateway, for gateway tests."""

from __future__ import annotations

import base64
import dataclasses
import datetime
from typing import Any

import httpx
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.localcluster import cluster
from tests.integration import gatewayproc, waiting
from tests.integration.tenantworld import World, new_tenant, unique_name


@dataclasses.dataclass(kw_only=True)
class GatewayWorld:
    """The management cluster (admin) and the gateway (HTTP)."""

    world: World
    gateway: gatewayproc.GatewayProcess

    def tenant(
        self, prefix: str = "gw", quota: dict[str, int] | None = None, **rate_limit: int
    ) -> str:
        """A reconciled Tenant in us-east, with rate_limit and quota fields if given."""
        name = unique_name(prefix)
        builder = new_tenant(name, "us-east")
        if rate_limit:
            builder = builder.rate_limit(**rate_limit)
        if quota:
            builder = builder.quota(**quota)
        self.world.create(builder.obj())
        self.world.wait_reconciled(name, timeout=90)
        return name

    def key(self, tenant: str, *, which: str = "api-key") -> str:
        """The tenant's current API key (or "previous-api-key"), from its Secret."""
        secret = self.world.kube.get(
            core_v1.Secret, f"{tenant}-api-key", namespace=f"tenant-{tenant}"
        )
        assert secret.data is not None
        return base64.b64decode(secret.data[which]).decode()

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        """A client of the gateway sending `Authorization: Bearer key` when key is given."""
        sent = dict(headers)
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.gateway.url, headers=sent, timeout=30)

    def wait_key_works(self, key: str, *, timeout: float = 60) -> None:
        """Wait until the gateway's index has the key (the operator publishes it first)."""
        with self.client(key) as http:
            waiting.until(
                lambda: http.get("/api/v1/batches").status_code == 200,
                timeout=timeout,
                what="gateway accepts the key",
            )

    def ready_tenant(
        self, prefix: str = "gw", quota: dict[str, int] | None = None, **rate_limit: int
    ) -> tuple[str, str]:
        """A tenant whose key the gateway already accepts: (name, key)."""
        name = self.tenant(prefix, quota, **rate_limit)
        key = self.key(name)
        self.wait_key_works(key)
        return name, key

    def batch(self, tenant: str, batch_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.world.kube.get(
            resources.ImageBatch, batch_id, namespace=f"tenant-{tenant}"
        ).to_dict()
        return found

    def batches(self, tenant: str) -> list[dict[str, Any]]:
        return [
            obj.to_dict()
            for obj in self.world.kube.list(resources.ImageBatch, namespace=f"tenant-{tenant}")
        ]

    def patch_tenant(self, tenant: str, spec: dict[str, Any]) -> None:
        self.world.kube.patch(resources.Tenant, tenant, {"spec": spec}, patch_type=PatchType.MERGE)

    def rotate(self, tenant: str, value: str) -> None:
        self.world.kube.patch(
            resources.Tenant,
            tenant,
            {"metadata": {"annotations": {"imagegen.semantest.io/rotate-api-key": value}}},
            patch_type=PatchType.MERGE,
        )


def items(count: int, **fields: Any) -> list[dict[str, Any]]:
    """`count` small items."""
    return [{"prompt": f"a lighthouse, take {n}", "size": "64x64", **fields} for n in range(count)]


GATEWAY_USER = "system:serviceaccount:imagegen-system:imagegen-gateway"


def refused_requests(management: cluster.LocalCluster, *, since: datetime.datetime) -> list[str]:
    """'verb resource code' of the gateway's requests since `since` that the apiserver
    refused (401/403): its Role must cover everything it does. Only since: the chart's RBAC
    tests probe refusals with a token of the same ServiceAccount."""
    return [
        f"{e['verb']} {e.get('objectRef', {}).get('resource')} {e['responseStatus']['code']}"
        for e in management.audit_events()
        if e["user"].get("username") == GATEWAY_USER
        and e.get("responseStatus", {}).get("code") in (401, 403)
        and datetime.datetime.fromisoformat(e["requestReceivedTimestamp"]) >= since
    ]
