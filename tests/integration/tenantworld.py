"""Reading the world the Tenant controller makes: Tenants in the management cluster,
pools in the regional clusters, and what the operator asked of each apiserver."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import lightkube
from lightkube import codecs
from lightkube.resources import apps_v1, autoscaling_v2, core_v1, policy_v1

from imagegen import resources
from imagegen.kube import clients, objects
from imagegen.localcluster import cluster, operatorsetup
from tests import builders
from tests.integration import waiting

OPERATOR_USER = f"system:serviceaccount:{operatorsetup.NAMESPACE}:{operatorsetup.SERVICE_ACCOUNT}"
WORKERS = "imagegen-workers"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
POOL_KINDS = {
    "Deployment": apps_v1.Deployment,
    "HorizontalPodAutoscaler": autoscaling_v2.HorizontalPodAutoscaler,
    "PodDisruptionBudget": policy_v1.PodDisruptionBudget,
    "ServiceAccount": core_v1.ServiceAccount,
}


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def new_tenant(name: str, *regions: str) -> builders.TenantBuilder:
    """A priority tenant with a namespace of its own, in the given regions."""
    return (
        builders.make_tenant(name)
        .tier("priority")
        .namespace(f"tenant-{name}")
        .regions(*(regions or ("us-east", "eu-west", "asia-pacific")))
    )


@dataclasses.dataclass(kw_only=True)
class World:
    """Admin clients of every cluster, for tests to look with."""

    kube: lightkube.Client
    regions: dict[str, cluster.LocalCluster]

    @contextlib.contextmanager
    def region(self, name: str) -> Iterator[lightkube.Client]:
        with clients.sync_client(kubeconfig=self.regions[name].kubeconfig) as client:
            yield client

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.kube.create(codecs.from_dict(obj)).to_dict()
        return created

    def tenant(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.kube.get(resources.Tenant, name).to_dict()
        return found

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        status = self.tenant(name).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == type_), None)

    def wait_condition(
        self, name: str, type_: str, status: str, *, reason: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            found = self.condition(name, type_)
            if found and found["status"] == status and reason in (None, found["reason"]):
                return found
            return None

        return waiting.until(reached, timeout=timeout, what=f"{name} {type_}={status} {reason}")

    def wait_observed(self, name: str, *, timeout: float = 60) -> dict[str, Any]:
        """Wait until the status describes the current generation, whatever it says."""

        def observed() -> dict[str, Any] | None:
            obj = self.tenant(name)
            generation = obj["metadata"]["generation"]
            return (
                obj if (obj.get("status") or {}).get("observedGeneration") == generation else None
            )

        return waiting.until(observed, timeout=timeout, what=f"{name} observed")

    def wait_reconciled(self, name: str, *, timeout: float = 60) -> dict[str, Any]:
        """Wait until the status describes the current generation and says Ready."""

        def reconciled() -> dict[str, Any] | None:
            obj = self.tenant(name)
            status = obj.get("status") or {}
            ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            return obj if current and ready and ready["status"] == "True" else None

        return waiting.until(reconciled, timeout=timeout, what=f"{name} reconciled")

    def pool_object(self, region: str, kind: str, name: str) -> dict[str, Any] | None:
        with self.region(region) as client, objects.not_found_ignored():
            found: dict[str, Any] = client.get(POOL_KINDS[kind], name, namespace=WORKERS).to_dict()
            return found
        return None

    def pool_objects(self, region: str, tenant_uid: str) -> list[str]:
        """'Kind/name' of every object in the region labelled with the Tenant's uid."""
        found = []
        with self.region(region) as client:
            for kind, resource in POOL_KINDS.items():
                for obj in client.list(
                    resource,
                    namespace=WORKERS,
                    labels={"imagegen.semantest.io/tenant-uid": tenant_uid},
                ):
                    found.append(f"{kind}/{obj.metadata.name}")  # type: ignore[union-attr]
        return sorted(found)


def operator_requests(target: cluster.LocalCluster) -> list[dict[str, Any]]:
    """Audit events of requests the operator's ServiceAccount made to a cluster."""
    return [e for e in target.audit_events() if e["user"].get("username") == OPERATOR_USER]


def writes_to(events: list[dict[str, Any]], name: str) -> list[str]:
    """'verb resource/name' of write requests about objects called name."""
    return [
        f"{e['verb']} {e['objectRef'].get('resource')}/{name}"
        for e in events
        if e["verb"] in WRITE_VERBS and e.get("objectRef", {}).get("name") == name
    ]


def reads_of(events: list[dict[str, Any]], name: str) -> int:
    return sum(
        1 for e in events if e["verb"] == "get" and e.get("objectRef", {}).get("name") == name
    )
