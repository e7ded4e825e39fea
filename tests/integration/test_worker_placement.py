"""Dedicated resources for real: worker pod profiles placed by the real kube-scheduler on
kwok nodes with labels, taints and nvidia.com/gpu, capacity reported in the Tenant's
status, and preemption by the PriorityClasses the chart ships.

Every test makes node pools of its own (a label and taint no other test uses) and
deletes its Tenants and nodes after, so the session's clusters stay as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import lightkube
import pytest
from lightkube import codecs
from lightkube.resources import apps_v1, core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.localcluster import addons
from imagegen.render import labels, pool
from tests.integration import waiting
from tests.integration.conftest import TEST_GPU_POOL, TEST_GPU_PROFILE
from tests.integration.tenantworld import WORKERS, World, new_tenant, unique_name

REGION = "asia-pacific"
POOL_LABEL = "imagegen.semantest.io/node-pool"
DEDICATED_TAINT_KEY = "imagegen.semantest.io/dedicated"
SCHEDULING_TIMEOUT = 180.0
"""Bound on pods being placed and the operator saying so (drift check every 3 s)."""


class Nodes:
    """kwok nodes this test creates in the region, deleted after it."""

    def __init__(self, client: lightkube.Client) -> None:
        self._client = client
        self.names: list[str] = []

    def add(
        self,
        prefix: str,
        *,
        node_labels: dict[str, str],
        taint: dict[str, str] | None,
        allocatable: dict[str, str],
        cordoned: bool = False,
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        manifest = addons.node_manifest(
            name,
            labels=node_labels,
            taints=[taint] if taint else (),
            allocatable={"memory": "64Gi", "pods": "110", **allocatable},
        )
        if cordoned:
            manifest.setdefault("spec", {})["unschedulable"] = True
        self._client.create(codecs.from_dict(manifest))
        self.names.append(name)
        return name

    def uncordon(self, name: str) -> None:
        self._client.patch(
            core_v1.Node, name, {"spec": {"unschedulable": False}}, patch_type=PatchType.MERGE
        )

    def delete_all(self) -> None:
        for name in self.names:
            self._client.delete(core_v1.Node, name)


@pytest.fixture
def region(world: World) -> Iterator[lightkube.Client]:
    with world.region(REGION) as client:
        yield client


@pytest.fixture
def nodes(region: lightkube.Client) -> Iterator[Nodes]:
    made = Nodes(region)
    yield made
    made.delete_all()


@pytest.fixture
def tenants(world: World) -> Iterator[list[str]]:
    """Names of the Tenants a test made; deleted after it, so their pods go too."""
    made: list[str] = []
    yield made
    for name in made:
        world.kube.delete(resources.Tenant, name)


def node_pool(tag: str) -> tuple[dict[str, str], dict[str, str]]:
    """A dedicated node pool's label and taint."""
    return (
        {POOL_LABEL: tag},
        {"key": DEDICATED_TAINT_KEY, "value": tag, "effect": "NoSchedule"},
    )


def placed_on(tag: str, *, priority_class: str) -> dict[str, Any]:
    """A Tenant's `workers.pod` that selects and tolerates the node pool `tag`."""
    node_labels, taint = node_pool(tag)
    return {
        "nodeSelector": node_labels,
        "tolerations": [{**taint, "operator": "Equal"}],
        "priorityClassName": priority_class,
    }


def create_tenant(
    world: World, tenants: list[str], prefix: str, *, tier: str, replicas: int, **workers: Any
) -> str:
    name = unique_name(prefix)
    builder = (
        new_tenant(name, REGION)
        .tier(tier)  # type: ignore[arg-type]
        .workers(pool="dedicated", min_replicas=replicas, max_replicas=replicas, **workers)
    )
    world.create(builder.obj())
    tenants.append(name)
    return name


def pods_of(client: lightkube.Client, tenant_name: str) -> list[core_v1.Pod]:
    """The Tenant's live worker pods in the region (terminating ones left out)."""
    return [
        pod
        for pod in client.list(core_v1.Pod, namespace=WORKERS, labels={labels.TENANT: tenant_name})
        if pod.metadata is not None and pod.metadata.deletionTimestamp is None
    ]


def running_nodes(client: lightkube.Client, tenant_name: str) -> list[str]:
    """The node of every Running pod of the Tenant."""
    return nodes_of_running(pods_of(client, tenant_name))


def nodes_of_running(pods: list[core_v1.Pod]) -> list[str]:
    return [
        pod.spec.nodeName or ""
        for pod in pods
        if pod.status is not None and pod.status.phase == "Running" and pod.spec is not None
    ]


def shared_pool_pods(client: lightkube.Client) -> list[core_v1.Pod]:
    """The live pods of the region's shared pool (worker-shared)."""
    selector: dict[str, Any] = labels.selector(pool_labels=labels.shared_pool(region=REGION))
    return [
        pod
        for pod in client.list(core_v1.Pod, namespace=WORKERS, labels=selector)
        if pod.metadata is not None and pod.metadata.deletionTimestamp is None
    ]


def reschedule_shared_pool(client: lightkube.Client) -> list[str]:
    """Delete the shared pool's pods, so that the scheduler places new ones now; return
    the nodes of the replacements once the Deployment's replicas all run."""
    existing = {
        name for pod in shared_pool_pods(client) if pod.metadata and (name := pod.metadata.name)
    }
    for name in existing:
        client.delete(core_v1.Pod, name, namespace=WORKERS)

    def replaced() -> list[str] | None:
        deployment = client.get(apps_v1.Deployment, pool.SHARED_POOL, namespace=WORKERS)
        wanted = deployment.spec.replicas if deployment.spec else None
        fresh = [
            p for p in shared_pool_pods(client) if p.metadata and p.metadata.name not in existing
        ]
        running = nodes_of_running(fresh)
        return running if wanted and len(running) == len(fresh) == wanted else None

    return waiting.until(
        replaced, timeout=SCHEDULING_TIMEOUT, what="the shared pool's pods placed anew"
    )


def phases(client: lightkube.Client, tenant_name: str) -> dict[str, int]:
    counted: dict[str, int] = {}
    for pod in pods_of(client, tenant_name):
        phase = (pod.status.phase if pod.status else None) or "Unknown"
        counted[phase] = counted.get(phase, 0) + 1
    return counted


def wait_phases(client: lightkube.Client, tenant_name: str, want: dict[str, int]) -> None:
    waiting.until(
        lambda: phases(client, tenant_name) == want,
        timeout=SCHEDULING_TIMEOUT,
        what=f"{tenant_name} pods {want}",
        explain=lambda: f"pods: {phases(client, tenant_name)}",
    )


def region_capacity(world: World, tenant_name: str) -> dict[str, Any] | None:
    status = world.tenant(tenant_name).get("status") or {}
    found = next((r for r in status.get("regions", []) if r["name"] == REGION), None)
    return found.get("capacity") if found else None


def wait_unschedulable(world: World, tenant_name: str, count: int) -> dict[str, Any]:
    """The Capacity condition once the operator has seen `count` workers refused: the
    scheduler tries pods one after the other, so an earlier pass may count fewer."""

    def reached() -> dict[str, Any] | None:
        capacity = region_capacity(world, tenant_name)
        if capacity is None or capacity.get("unschedulable") != count:
            return None
        return world.condition(tenant_name, "Capacity")

    return waiting.until(
        reached, timeout=SCHEDULING_TIMEOUT, what=f"{tenant_name}: {count} unschedulable"
    )


def event_reasons(world: World, tenant_name: str) -> list[str]:
    return [
        event.reason or ""
        for event in world.kube.list(core_v1.Event, namespace=lightkube.ALL_NS)
        if event.involvedObject.name == tenant_name and event.involvedObject.kind == "Tenant"
    ]


def test_premium_workers_land_only_on_the_dedicated_pool_and_others_never_do(
    world: World, region: lightkube.Client, nodes: Nodes, tenants: list[str]
) -> None:
    tag = unique_name("premium")
    node_labels, taint = node_pool(tag)
    dedicated = {
        nodes.add("dedicated", node_labels=node_labels, taint=taint, allocatable={"cpu": "32"})
        for _ in range(2)
    }
    premium = create_tenant(
        world,
        tenants,
        "premium",
        tier="priority",
        replicas=10,
        pod=placed_on(tag, priority_class="imagegen-premium"),
    )
    standard = create_tenant(world, tenants, "standard", tier="standard", replicas=10)
    # A shared tenant brings the region's shared pool, whose pods must stay off as well.
    shared = unique_name("shared")
    world.create(new_tenant(shared, REGION).tier("standard").workers(pool="shared").obj())
    tenants.append(shared)
    world.wait_reconciled(shared)

    wait_phases(region, premium, {"Running": 10})
    wait_phases(region, standard, {"Running": 10})
    shared_nodes = reschedule_shared_pool(region)

    assert set(running_nodes(region, premium)) <= dedicated
    # The dedicated nodes had room for all of them, and were refused by the taint alone.
    assert not set(running_nodes(region, standard)) & dedicated
    assert not set(shared_nodes) & dedicated
    world.wait_condition(premium, "Capacity", "True", reason="AllWorkersPlaced")


def test_a_gpu_pool_short_of_gpus_says_so_with_the_schedulers_reason_until_freed(
    world: World, region: lightkube.Client, nodes: Nodes, tenants: list[str]
) -> None:
    gpu_taint = {**TEST_GPU_PROFILE["tolerations"][0]}  # type: ignore[index]
    gpu_taint.pop("operator")
    for _ in range(2):
        nodes.add(
            "gpu",
            node_labels=TEST_GPU_POOL,
            taint=gpu_taint,
            allocatable={"cpu": "32", "nvidia.com/gpu": "4"},
        )
    # Ready from the start but cordoned: uncordoning it frees capacity at once, without
    # the not-ready window of a new node changing the scheduler's words in between.
    spare = nodes.add(
        "gpu",
        node_labels=TEST_GPU_POOL,
        taint=gpu_taint,
        allocatable={"cpu": "32", "nvidia.com/gpu": "4"},
        cordoned=True,
    )
    name = create_tenant(world, tenants, "gpu", tier="priority", replicas=12, profile="test-gpu")

    wait_phases(region, name, {"Running": 8, "Pending": 4})
    short = wait_unschedulable(world, name, 4)
    assert (short["status"], short["reason"]) == ("False", "Unschedulable")
    assert short["message"].startswith(f"{REGION}: 4 worker(s) unschedulable (4 pending): ")
    assert "Insufficient nvidia.com/gpu" in short["message"]
    capacity = region_capacity(world, name)
    assert capacity is not None
    assert (capacity["pending"], capacity["unschedulable"], capacity["reason"]) == (
        4,
        4,
        "Unschedulable",
    )
    assert "Insufficient nvidia.com/gpu" in capacity["message"]

    nodes.uncordon(spare)

    wait_phases(region, name, {"Running": 12})
    world.wait_condition(
        name, "Capacity", "True", reason="AllWorkersPlaced", timeout=SCHEDULING_TIMEOUT
    )
    reasons = waiting.until(
        lambda: (found := event_reasons(world, name)) and "WorkersPlaced" in found and found,
        timeout=30,
        what="WorkersPlaced event",
    )
    # One Event when the scheduler began refusing, one when it stopped: not one per pass.
    assert reasons.count("WorkersUnschedulable") == 1
    assert reasons.count("WorkersPlaced") == 1


def test_a_premium_burst_in_a_full_region_preempts_standard_workers_never_the_reverse(
    world: World, region: lightkube.Client, nodes: Nodes, tenants: list[str]
) -> None:
    tag = unique_name("arena")
    node_labels, taint = node_pool(tag)
    # Room for exactly eight workers of 500m.
    nodes.add("arena", node_labels=node_labels, taint=taint, allocatable={"cpu": "4"})
    standard = create_tenant(
        world,
        tenants,
        "std",
        tier="standard",
        replicas=8,
        pod=placed_on(tag, priority_class="imagegen-standard"),
    )
    wait_phases(region, standard, {"Running": 8})
    world.wait_condition(
        standard, "Capacity", "True", reason="AllWorkersPlaced", timeout=SCHEDULING_TIMEOUT
    )

    premium = create_tenant(
        world,
        tenants,
        "burst",
        tier="priority",
        replicas=4,
        pod=placed_on(tag, priority_class="imagegen-premium"),
    )

    wait_phases(region, premium, {"Running": 4})
    wait_phases(region, standard, {"Running": 4, "Pending": 4})
    lost = wait_unschedulable(world, standard, 4)
    assert (lost["status"], lost["reason"]) == ("False", "Unschedulable")
    assert lost["message"].startswith(f"{REGION}: 4 worker(s) unschedulable (4 pending): ")
    assert "Insufficient cpu" in lost["message"]
    # The standard replacements wait; they never take the premium workers' place.
    assert phases(region, premium) == {"Running": 4}
    world.wait_condition(premium, "Capacity", "True", reason="AllWorkersPlaced")


INVALID_PROFILES: dict[str, tuple[dict[str, Any], str]] = {
    "negative GPU count": (
        {"pod": {"resources": {"requests": {"nvidia.com/gpu": "-1"}}}},
        "spec.workers.pod.resources.requests.nvidia.com/gpu",
    ),
    "a node selector key that is no label key": (
        {"pod": {"nodeSelector": {"bad key!": "x"}}},
        "spec.workers.pod.nodeSelector",
    ),
    "toleration with a bad operator": (
        {"pod": {"tolerations": [{"key": "gpu", "operator": "Within"}]}},
        "spec.workers.pod.tolerations[0].operator",
    ),
    "toleration Exists with a value": (
        {"pod": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "a100"}]}},
        "spec.workers.pod.tolerations[0].value",
    ),
    "a profile on a shared pool": (
        {"pool": "shared", "profile": "test-gpu"},
        "spec.workers.pool",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_PROFILES))
def test_an_invalid_profile_is_refused_by_the_apiserver_naming_the_field(
    world: World, case: str
) -> None:
    workers, field = INVALID_PROFILES[case]
    obj = new_tenant(unique_name("bad"), REGION).obj()
    obj["spec"]["workers"] = workers

    with pytest.raises(lightkube.ApiError) as refused:
        world.create(obj)

    assert refused.value.status.code == 422
    assert field in (refused.value.status.message or "")


def test_a_profile_the_operator_config_lacks_is_refused_in_the_tenants_status(
    world: World, tenants: list[str]
) -> None:
    name = create_tenant(world, tenants, "unknown", tier="standard", replicas=1, profile="gpu-h100")

    ready = world.wait_condition(name, "Ready", "False", reason="UnknownProfile")

    assert ready["message"] == (
        "spec.workers.profile: unknown profile 'gpu-h100'; the operator config has: test-gpu"
    )
    assert world.pool_objects(REGION, world.tenant(name)["metadata"]["uid"]) == []
