"""Tenants become worker pools in every region: the real operator, under its least-privilege
ServiceAccount, against one management and three regional control planes."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import time

import lightkube
from lightkube.resources import autoscaling_v2, core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.api import operatorconfig, tenant
from imagegen.controller import drift
from imagegen.localcluster import cluster, operatorsetup, stack
from imagegen.render import pool
from tests.integration import operatorproc, tenantworld, waiting
from tests.integration.apiobjects import absent
from tests.integration.conftest import DRIFT_CHECK_SECONDS
from tests.integration.tenantworld import WORKERS, World, new_tenant, unique_name

ALL_REGIONS = ("us-east", "eu-west", "asia-pacific")


def test_a_tenant_gets_its_pool_in_every_region_exactly_as_rendered(
    world: World, operator_setup: operatorsetup.OperatorSetup
) -> None:
    name = unique_name("pools")
    created = world.create(new_tenant(name).obj())
    reconciled = world.wait_reconciled(name)
    model = tenant.Tenant.model_validate(reconciled)
    config = operatorconfig.load(operator_setup.config_path)
    for region in ALL_REGIONS:
        assert world.pool_objects(region, created["metadata"]["uid"]) == [
            f"Deployment/worker-{name}",
            f"HorizontalPodAutoscaler/worker-{name}",
            f"PodDisruptionBudget/worker-{name}",
            f"ServiceAccount/worker-{name}",
        ]
        for manifest in pool.tenant_pool(tenant=model, region=region, config=config):
            if manifest["kind"] == "Namespace":
                continue
            live = world.pool_object(region, manifest["kind"], manifest["metadata"]["name"])
            assert drift.contains(live=live, desired=manifest), (region, manifest["kind"])
        hpa = world.pool_object(region, "HorizontalPodAutoscaler", f"worker-{name}")
        assert hpa is not None
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 50)
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
        assert hpa["spec"]["behavior"]["scaleUp"]["tolerance"] == "143m"
        assert hpa["spec"]["behavior"]["scaleDown"]["tolerance"] == "571m"
    regions_status = {r["name"]: r for r in reconciled["status"]["regions"]}
    assert sorted(regions_status) == sorted(ALL_REGIONS)
    assert all("lastError" not in r for r in regions_status.values())


def test_editing_replicas_and_thresholds_updates_every_region(world: World) -> None:
    name = unique_name("edit")
    world.create(new_tenant(name).obj())
    world.wait_reconciled(name)
    world.kube.patch(
        resources.Tenant,
        name,
        {"spec": {"workers": {"minReplicas": 5, "maxReplicas": 20, "scaleUpThresholdPercent": 90}}},
        patch_type=PatchType.MERGE,
    )
    world.wait_reconciled(name)
    for region in ALL_REGIONS:
        hpa = world.pool_object(region, "HorizontalPodAutoscaler", f"worker-{name}")
        assert hpa is not None
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (5, 20)
        # 90 / 70 - 1 = 0.2857...
        assert hpa["spec"]["behavior"]["scaleUp"]["tolerance"] == "286m"


def test_an_unchanged_tenant_costs_reads_only(
    world: World, management: cluster.LocalCluster
) -> None:
    name = unique_name("steady")
    world.create(new_tenant(name).obj())
    world.wait_reconciled(name)
    time.sleep(DRIFT_CHECK_SECONDS)  # let the reconcile that made the objects finish
    clusters = {"management": management, **world.regions}
    before = {n: len(tenantworld.operator_requests(c)) for n, c in clusters.items()}

    def since(cluster_name: str) -> list[dict[str, object]]:
        return tenantworld.operator_requests(clusters[cluster_name])[before[cluster_name] :]

    def drift_checks_seen() -> bool:
        # Each drift check reads the tenant's key Secret; each region's pools are read by
        # LISTs shared by all Tenants, refreshed every half interval.
        checks = tenantworld.reads_of(since("management"), f"{name}-api-key")
        lists = [sum(1 for e in since(r) if e["verb"] == "list") for r in world.regions]
        return checks >= 2 and min(lists) >= 2

    waiting.until(drift_checks_seen, timeout=8 * DRIFT_CHECK_SECONDS, what="two drift checks")
    for cluster_name in clusters:
        writes = tenantworld.writes_to(since(cluster_name), f"worker-{name}")
        writes += tenantworld.writes_to(since(cluster_name), f"{name}-api-key")
        assert writes == [], cluster_name


def test_a_hand_edit_of_a_managed_field_is_reverted(world: World) -> None:
    name = unique_name("drift")
    world.create(new_tenant(name).obj())
    world.wait_reconciled(name)
    with world.region("eu-west") as client:
        client.patch(
            autoscaling_v2.HorizontalPodAutoscaler,
            f"worker-{name}",
            {"spec": {"maxReplicas": 7}},
            namespace=WORKERS,
            patch_type=PatchType.MERGE,
        )

    def reverted() -> bool:
        hpa = world.pool_object("eu-west", "HorizontalPodAutoscaler", f"worker-{name}")
        return hpa is not None and hpa["spec"]["maxReplicas"] == 50

    waiting.until(reverted, timeout=6 * DRIFT_CHECK_SECONDS, what="maxReplicas back to 50")


def test_removing_a_region_removes_its_pool_and_deleting_the_tenant_removes_all(
    world: World,
) -> None:
    name = unique_name("shrink")
    uid = world.create(new_tenant(name).obj())["metadata"]["uid"]
    world.wait_reconciled(name)
    world.kube.patch(
        resources.Tenant, name, {"spec": {"regions": ["us-east", "eu-west"]}},
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    waiting.until(lambda: world.pool_objects("asia-pacific", uid) == [], what="asia-pacific clean")
    assert len(world.pool_objects("us-east", uid)) == 4
    world.kube.delete(resources.Tenant, name)
    for region in ALL_REGIONS:
        waiting.until(lambda r=region: world.pool_objects(r, uid) == [], what=f"{region} clean")
    waiting.until(lambda: absent(world.kube, core_v1.Secret, f"{name}-api-key", f"tenant-{name}"))
    waiting.until(
        lambda: absent(world.kube, core_v1.ConfigMap, f"api-keys-{name}", "imagegen-system")
    )


def test_orphan_sweep_removes_pools_of_a_tenant_that_vanished_while_the_operator_was_down(
    world: World, running_operator: operatorproc.OperatorProcess
) -> None:
    name = unique_name("orphan")
    uid = world.create(new_tenant(name).obj())["metadata"]["uid"]
    world.wait_reconciled(name)
    running_operator.stop()
    try:
        world.kube.patch(
            resources.Tenant, name, {"metadata": {"finalizers": []}}, patch_type=PatchType.MERGE
        )
        world.kube.delete(resources.Tenant, name)
        assert len(world.pool_objects("us-east", uid)) == 4
    finally:
        running_operator.start()
    for region in ALL_REGIONS:
        waiting.until(lambda r=region: world.pool_objects(r, uid) == [], what=f"{region} swept")


def test_a_recreated_tenant_of_the_same_name_is_not_taken_for_its_predecessor(
    world: World,
) -> None:
    name = unique_name("again")
    first = world.create(new_tenant(name, "us-east").obj())["metadata"]["uid"]
    world.wait_reconciled(name)
    world.kube.delete(resources.Tenant, name)
    waiting.until(lambda: world.pool_objects("us-east", first) == [], what="first cleaned up")
    waiting.until(lambda: absent(world.kube, resources.Tenant, name), what="first gone")
    second = world.create(new_tenant(name, "us-east").obj())["metadata"]["uid"]
    world.wait_reconciled(name)
    assert len(world.pool_objects("us-east", second)) == 4


def test_an_unreachable_region_degrades_the_tenant_but_not_the_other_regions(
    world: World, regions: dict[str, cluster.LocalCluster]
) -> None:
    name = unique_name("outage")
    world.create(new_tenant(name).obj())
    world.wait_reconciled(name)
    regions["eu-west"].stop_apiserver()
    try:
        world.kube.patch(
            resources.Tenant, name, {"spec": {"workers": {"maxReplicas": 30}}},
            patch_type=PatchType.MERGE,
        )  # fmt: skip
        world.wait_observed(name)
        world.wait_condition(name, "Degraded", "True", reason="RegionUnreachable")
        ready = world.wait_condition(name, "Ready", "False", reason="RegionUnreachable")
        assert "eu-west" in ready["message"]
        for region in ("us-east", "asia-pacific"):
            hpa = world.pool_object(region, "HorizontalPodAutoscaler", f"worker-{name}")
            assert hpa is not None, region
            assert hpa["spec"]["maxReplicas"] == 30, region
        status = world.tenant(name)["status"]
        by_region = {r["name"]: r for r in status["regions"]}
        assert by_region["eu-west"]["lastError"].startswith("RegionUnreachable")
        assert "lastError" not in by_region["us-east"]
    finally:
        regions["eu-west"].start_apiserver()
    world.wait_condition(name, "Degraded", "False", timeout=10 * DRIFT_CHECK_SECONDS)
    world.wait_reconciled(name)
    hpa = world.pool_object("eu-west", "HorizontalPodAutoscaler", f"worker-{name}")
    assert hpa is not None
    assert hpa["spec"]["maxReplicas"] == 30


def test_an_operator_killed_mid_reconcile_converges_without_duplicates(
    world: World, running_operator: operatorproc.OperatorProcess
) -> None:
    name = unique_name("restart")
    uid = world.create(new_tenant(name).obj())["metadata"]["uid"]
    time.sleep(0.3)
    running_operator.stop(sig=signal.SIGKILL)
    running_operator.start()
    world.wait_reconciled(name)
    for region in ALL_REGIONS:
        assert len(world.pool_objects(region, uid)) == 4, region
    secrets = [
        s.metadata.name
        for s in world.kube.list(core_v1.Secret, namespace=f"tenant-{name}")
        if s.metadata is not None
    ]
    assert secrets == [f"{name}-api-key"]


def test_an_unknown_region_is_refused_and_nothing_is_made(world: World) -> None:
    name = unique_name("mars")
    uid = world.create(new_tenant(name, "us-east", "mars").obj())["metadata"]["uid"]
    ready = world.wait_condition(name, "Ready", "False", reason="UnknownRegion")
    assert "spec.regions" in ready["message"]
    assert "mars" in ready["message"]
    time.sleep(DRIFT_CHECK_SECONDS)
    assert world.pool_objects("us-east", uid) == []
    assert absent(world.kube, core_v1.Namespace, f"tenant-{name}")
    assert "UnknownRegion" in _event_reasons(world.kube, name)


def test_a_namespace_of_another_tenant_is_refused_and_nothing_is_made(world: World) -> None:
    owner = unique_name("owner")
    world.create(new_tenant(owner, "us-east").obj())
    world.wait_reconciled(owner)
    intruder = unique_name("intruder")
    uid = world.create(new_tenant(intruder, "us-east").namespace(f"tenant-{owner}").obj())[
        "metadata"
    ]["uid"]
    ready = world.wait_condition(intruder, "Ready", "False", reason="NamespaceOwnedByAnotherTenant")
    assert "spec.namespace" in ready["message"]
    assert owner in ready["message"]
    assert world.pool_objects("us-east", uid) == []
    assert absent(world.kube, core_v1.Secret, f"{intruder}-api-key", f"tenant-{owner}")


def test_the_api_key_is_published_as_a_digest_and_rotates_with_a_grace_period(
    world: World,
) -> None:
    name = unique_name("keys")
    world.create(new_tenant(name, "us-east").obj())
    world.wait_reconciled(name)
    first = _api_key(world.kube, name)
    assert first.startswith("igk_")
    assert set(_key_index(world.kube, name)) == {_sha256(first)}

    world.kube.patch(
        resources.Tenant, name,
        {"metadata": {"annotations": {"imagegen.semantest.io/rotate-api-key": "2026-11-26"}}},
        patch_type=PatchType.MERGE,
    )  # fmt: skip
    second = waiting.until(
        lambda: (k := _api_key(world.kube, name)) != first and k, what="rotation"
    )
    # The operator writes the Secret, then the index: wait for the index to catch up.
    index = waiting.until(
        lambda: (
            (i := _key_index(world.kube, name))
            and set(i) == {_sha256(first), _sha256(second)}
            and i
        ),
        what="both keys in the index",
    )
    assert index[_sha256(first)]["expiresAt"] is not None
    assert index[_sha256(second)] == {"tenant": name, "expiresAt": None}
    serialized = json.dumps(world.tenant(name)) + " ".join(_event_messages(world.kube, name))
    assert first not in serialized
    assert second not in serialized


def test_the_operator_never_needed_more_than_its_roles(
    world: World, local_stack: stack.LocalStack
) -> None:
    """Every request of a whole Tenant lifecycle was allowed. (Requests refused while an
    apiserver restarts, before its RBAC caches sync, belong to other tests' windows.)"""
    before = {c.name: len(tenantworld.operator_requests(c)) for c in local_stack.all_clusters()}
    name = unique_name("rbac")
    uid = world.create(new_tenant(name).obj())["metadata"]["uid"]
    world.wait_reconciled(name)
    world.kube.patch(
        resources.Tenant, name, {"spec": {"regions": ["us-east"]}}, patch_type=PatchType.MERGE
    )
    waiting.until(lambda: world.pool_objects("eu-west", uid) == [], what="eu-west removed")
    world.kube.delete(resources.Tenant, name)
    waiting.until(lambda: world.pool_objects("us-east", uid) == [], what="us-east removed")
    refused = [
        f"{c.name}: {e['verb']} {e.get('objectRef', {}).get('resource')}"
        for c in local_stack.all_clusters()
        for e in tenantworld.operator_requests(c)[before[c.name] :]
        if e.get("responseStatus", {}).get("code") == 403
    ]
    assert refused == []


def _api_key(kube: lightkube.Client, name: str) -> str:
    secret = kube.get(core_v1.Secret, f"{name}-api-key", namespace=f"tenant-{name}")
    assert secret.data is not None
    return base64.b64decode(secret.data["api-key"]).decode()


def _key_index(kube: lightkube.Client, name: str) -> dict[str, dict[str, object]]:
    index = kube.get(core_v1.ConfigMap, f"api-keys-{name}", namespace="imagegen-system")
    return {digest: json.loads(entry) for digest, entry in (index.data or {}).items()}


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _events(kube: lightkube.Client, name: str) -> list[core_v1.Event]:
    return [
        e
        for e in kube.list(core_v1.Event, namespace=lightkube.ALL_NS)
        if e.involvedObject.name == name and e.involvedObject.kind == "Tenant"
    ]


def _event_reasons(kube: lightkube.Client, name: str) -> set[str]:
    return {e.reason or "" for e in _events(kube, name)}


def _event_messages(kube: lightkube.Client, name: str) -> list[str]:
    return [e.message or "" for e in _events(kube, name)]
