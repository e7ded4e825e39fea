"""Worker pools scale between their Tenant's bounds on its CPU band, by the real HPA
controller reading the real metrics API (metrics-server over kwok's simulated use).

Each test owns a Tenant in one region; only the pods' CPU annotation is set by hand
(see hpaload). The regional controller-manager syncs HPAs every 5 s and metrics-server
resolves CPU every 10 s, so "several sync periods" is tens of seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lightkube
import pytest
from lightkube.resources import autoscaling_v2
from lightkube.types import PatchType

from imagegen import resources
from imagegen.kube import clients
from imagegen.localcluster import stack
from tests.integration import operatorproc
from tests.integration.hpaload import PoolLoad
from tests.integration.tenantworld import WORKERS, World, new_tenant, unique_name

pytestmark = [pytest.mark.autoscale, pytest.mark.timeout(900)]

SYNC_SECONDS = stack.HPA_SYNC_SECONDS
FULL = 200
"""Utilization of a pool with a backlog: pods at their CPU limit (1 core of 500m)."""
IDLE = 10


@pytest.fixture
def world(
    kube: lightkube.Client,
    local_stack: stack.LocalStack,
    running_operator: operatorproc.OperatorProcess,
) -> Iterator[World]:
    yield World(kube=kube, regions=local_stack.regions)
    assert "Traceback" not in running_operator.log(), running_operator.log()[-4000:]


@pytest.fixture
def pool_in(world: World) -> Iterator[Callable[..., PoolLoad]]:
    """Make a Tenant with the given worker settings in one region and return its pool,
    once the pool's pods run and the HPA reads their CPU. Deletes the Tenants after."""
    made: list[str] = []
    opened: list[lightkube.Client] = []

    def make(region: str, *, name: str, utilization: int, **workers: object) -> PoolLoad:
        world.create(new_tenant(name, region).workers(**workers).obj())
        made.append(name)
        world.wait_reconciled(name, timeout=120)
        client = clients.sync_client(kubeconfig=world.regions[region].kubeconfig)
        opened.append(client)
        pool = PoolLoad(client=client, name=f"worker-{name}", utilization_percent=utilization)
        pool.run_until(
            lambda sample: sample.utilization is not None and sample.replicas >= 3,
            timeout=120,
            what=f"{pool.name}: the HPA reading CPU from the metrics API",
        )
        # Before the HPA's first sync the Deployment runs its default single replica:
        # what the tests judge starts once the HPA owns the pool.
        pool.history.clear()
        return pool

    yield make
    for name in made:
        world.kube.delete(resources.Tenant, name)
    for client in opened:
        client.close()


def test_inside_the_band_the_pool_keeps_its_replicas(
    pool_in: Callable[..., PoolLoad],
) -> None:
    # 78 % is 11 % over the 70 % target: the HPA's default 10 % tolerance would scale up,
    # the Tenant's band (up at 80 %) must not.
    pool = pool_in("us-east", name=unique_name("band"), utilization=78, max_replicas=10)
    pool.run_until(
        lambda sample: sample.utilization is not None and 75 <= sample.utilization < 80,
        timeout=90,
        what="the HPA reading about 78 %",
    )

    held = pool.hold(6 * SYNC_SECONDS)

    assert {sample.replicas for sample in held} == {3}, pool.story()
    assert {sample.desired for sample in held} == {3}, pool.story()
    assert all(sample.conditions.get("ScalingActive") == "True" for sample in held), pool.story()


def test_a_burst_scales_to_exactly_max_and_a_tenant_edit_raises_the_ceiling_live(
    world: World, pool_in: Callable[..., PoolLoad]
) -> None:
    name = unique_name("burst")
    pool = pool_in("eu-west", name=name, utilization=FULL, max_replicas=10)
    pool.run_until(lambda sample: sample.replicas == 10, timeout=240, what="10 replicas")
    at_ten = pool.hold(3 * SYNC_SECONDS)
    assert {sample.replicas for sample in at_ten} == {10}, pool.story()
    assert at_ten[-1].conditions.get("ScalingLimited") == "True", pool.story()
    hpa_before = hpa(pool)

    world.kube.patch(
        resources.Tenant,
        name,
        patch_type=PatchType.MERGE,
        obj={
            "spec": {
                "workers": {
                    "maxReplicas": 50,
                    "targetCPUUtilizationPercentage": 60,
                    "scaleUpThresholdPercent": 75,
                    "scaleDownThresholdPercent": 20,
                }
            }
        },
    )

    pool.run_until(
        lambda _: hpa(pool).spec.maxReplicas == 50,  # type: ignore[union-attr]
        timeout=60,
        what="the Tenant's new maxReplicas on the live HPA",
    )
    hpa_after = hpa(pool)
    assert hpa_after.metadata.uid == hpa_before.metadata.uid, "the HPA was replaced, not updated"  # type: ignore[union-attr]
    assert hpa_after.spec.metrics[0].resource.target.averageUtilization == 60  # type: ignore[union-attr,index]
    assert hpa_after.spec.behavior.scaleUp.tolerance == "250m"  # type: ignore[union-attr]
    assert hpa_after.spec.behavior.scaleDown.tolerance == "667m"  # type: ignore[union-attr]

    pool.run_until(lambda sample: sample.replicas == 50, timeout=300, what="50 replicas")
    at_fifty = pool.hold(3 * SYNC_SECONDS)
    assert {sample.replicas for sample in at_fifty} == {50}, pool.story()
    assert max(pool.replicas_seen()) == 50, pool.story()
    assert min(pool.replicas_seen()) >= 3, pool.story()


def test_when_load_falls_the_pool_waits_the_tenants_window_then_shrinks_to_exactly_min(
    pool_in: Callable[..., PoolLoad],
) -> None:
    window = 45
    pool = pool_in(
        "us-east",
        name=unique_name("calm"),
        utilization=FULL,
        max_replicas=8,
        scale_down_stabilization_seconds=window,
    )
    pool.run_until(lambda sample: sample.replicas == 8, timeout=240, what="8 replicas")

    pool.set_utilization(IDLE)
    quiet = pool.run_until(
        lambda sample: sample.utilization is not None and sample.utilization < 30,
        timeout=90,
        what="the HPA reading the load below the 30 % threshold",
    )
    first_drop = pool.run_until(lambda sample: sample.replicas < 8, timeout=180, what="a drop")
    pool.run_until(lambda sample: sample.replicas == 3, timeout=180, what="3 replicas")
    at_min = pool.hold(3 * SYNC_SECONDS)

    # The last high recommendation was made at most one sync before the HPA showed the low
    # reading, and this test polls once a second: the window, less that slack, must pass.
    waited = first_drop.at - quiet.at
    assert waited >= window - SYNC_SECONDS - 2, f"scaled down after {waited:.0f}s\n{pool.story()}"
    assert {sample.replicas for sample in at_min} == {3}, pool.story()
    assert min(pool.replicas_seen()) == 3, pool.story()


def test_without_metrics_the_pool_holds_and_the_tenant_says_metrics_are_unavailable(
    world: World, pool_in: Callable[..., PoolLoad]
) -> None:
    name = unique_name("blind")
    region = world.regions["asia-pacific"]
    pool = pool_in("asia-pacific", name=name, utilization=FULL, max_replicas=6)
    pool.run_until(lambda sample: sample.replicas == 6, timeout=240, what="6 replicas")
    at_six = len(pool.history)
    # Until the HPA's first metrics the Tenant truthfully said MetricsUnavailable: wait
    # until it reports the metrics flowing, or the outage below would prove nothing.
    pool.run_until(
        lambda _: autoscaling_reason(world, name) in {"ScalingActive", "ScalingLimited"},
        timeout=60,
        what="the Autoscaling condition reporting working metrics",
    )

    region.stop_process("metrics-server")
    try:
        pool.run_until(
            lambda _: autoscaling_reason(world, name) == "MetricsUnavailable",
            timeout=120,
            what="the Tenant's Autoscaling condition saying MetricsUnavailable",
        )
        held = pool.hold(3 * SYNC_SECONDS)
    finally:
        region.start_process("metrics-server")

    assert all(sample.conditions.get("ScalingActive") == "False" for sample in held), pool.story()
    assert {sample.replicas for sample in held} == {6}, pool.story()
    condition = world.condition(name, "Autoscaling")
    assert condition is not None
    assert condition["status"] == "False"
    assert "asia-pacific" in condition["message"]

    pool.run_until(
        lambda _: autoscaling_reason(world, name) in {"ScalingActive", "ScalingLimited"},
        timeout=120,
        what="the Autoscaling condition recovering once metrics-server is back",
    )
    assert {sample.replicas for sample in pool.history[at_six:]} == {6}, pool.story()


def hpa(pool: PoolLoad) -> autoscaling_v2.HorizontalPodAutoscaler:
    return pool.client.get(autoscaling_v2.HorizontalPodAutoscaler, pool.name, namespace=WORKERS)


def autoscaling_reason(world: World, name: str) -> str | None:
    condition = world.condition(name, "Autoscaling")
    return condition["reason"] if condition else None
