"""Capacity from the region's pod watch: counts per pool, the scheduler's words, the
condition, and Events only on change."""

from lightkube.models import core_v1, meta_v1
from lightkube.resources import core_v1 as core

from imagegen.api import tenant
from imagegen.controller import capacity
from imagegen.metrics import operator as metrics
from imagegen.render import labels
from tests import builders

NO_GPU = "0/5 nodes are available: 5 Insufficient nvidia.com/gpu."


def worker(
    name: str,
    *,
    pool: str = "premium",
    phase: str = "Running",
    unschedulable: str | None = None,
    preempted: bool = False,
) -> core.Pod:
    pod_labels = (
        {labels.POOL: "shared"}
        if pool == capacity.SHARED
        else {labels.TENANT: pool, labels.POOL: "dedicated"}
    )
    conditions = []
    if unschedulable is not None:
        conditions.append(
            core_v1.PodCondition(
                type="PodScheduled", status="False", reason="Unschedulable", message=unschedulable
            )
        )
    if preempted:
        conditions.append(
            core_v1.PodCondition(
                type="DisruptionTarget", status="True", reason="PreemptionByScheduler"
            )
        )
    return core.Pod(
        metadata=meta_v1.ObjectMeta(name=name, uid=f"uid-{name}", labels=pod_labels),
        status=core_v1.PodStatus(phase=phase, conditions=conditions),
    )


def region_with(*pods: core.Pod) -> capacity.RegionPods:
    region = capacity.RegionPods(region="us-east")
    region.replace(list(pods))
    return region


def test_nothing_is_known_before_the_first_list() -> None:
    assert capacity.RegionPods(region="us-east").capacity("premium") is None


def test_pending_and_unschedulable_are_counted_per_pool_with_the_schedulers_message() -> None:
    region = region_with(
        *(worker(f"run-{i}") for i in range(8)),
        *(worker(f"wait-{i}", phase="Pending", unschedulable=NO_GPU) for i in range(4)),
        worker("starting", phase="Pending"),
        worker("other", pool="standard", phase="Pending", unschedulable="0/5 nodes: taint"),
    )

    assert region.capacity("premium") == tenant.PoolCapacity(
        pending=5, unschedulable=4, reason="Unschedulable", message=NO_GPU
    )
    assert region.capacity("absent") == tenant.PoolCapacity(pending=0, unschedulable=0)


def test_watch_events_update_the_counts() -> None:
    region = region_with(worker("a", phase="Pending", unschedulable=NO_GPU))
    region.apply("MODIFIED", worker("a"))
    assert region.capacity("premium") == tenant.PoolCapacity()
    region.apply("ADDED", worker("b", pool=capacity.SHARED, phase="Pending", unschedulable="x"))
    assert region.capacity(capacity.SHARED) is not None
    assert region.capacity(capacity.SHARED).unschedulable == 1  # type: ignore[union-attr]
    region.apply("DELETED", worker("b", pool=capacity.SHARED))
    assert region.capacity(capacity.SHARED) == tenant.PoolCapacity()


def test_condition_is_false_with_the_regions_reason_and_true_when_all_placed() -> None:
    short = tenant.RegionStatus(
        name="us-east",
        capacity=tenant.PoolCapacity(
            pending=4, unschedulable=4, reason="Unschedulable", message=NO_GPU
        ),
    )
    fine = tenant.RegionStatus(name="eu-west", capacity=tenant.PoolCapacity())

    summary = capacity.summarize([short, fine])
    assert (summary.status, summary.reason) == ("False", "Unschedulable")
    assert summary.message == f"us-east: 4 worker(s) unschedulable (4 pending): {NO_GPU}"
    assert capacity.summarize([fine]).status == "True"
    assert capacity.summarize([tenant.RegionStatus(name="x")]).status == "Unknown"


def test_events_only_when_the_schedulers_words_change() -> None:
    short = tenant.PoolCapacity(pending=4, unschedulable=4, reason="Unschedulable", message=NO_GPU)
    placed = tenant.PoolCapacity()

    assert [e[1] for e in capacity.changed_events(region="r", before=None, after=short)] == [
        "WorkersUnschedulable"
    ]
    assert capacity.changed_events(region="r", before=short, after=short) == []
    assert [e[1] for e in capacity.changed_events(region="r", before=short, after=placed)] == [
        "WorkersPlaced"
    ]
    assert capacity.changed_events(region="r", before=placed, after=placed) == []
    assert capacity.changed_events(region="r", before=None, after=placed) == []


def test_a_preempted_worker_is_counted_once_even_across_a_relist() -> None:
    def preempted() -> float:
        value = metrics.REGISTRY.get_sample_value(
            "imagegen_pool_workers_preempted_total", {"tenant": "victim", "region": "us-east"}
        )
        return value or 0.0

    start = preempted()
    region = region_with()
    region.apply("MODIFIED", worker("v", pool="victim", preempted=True))
    region.apply("MODIFIED", worker("v", pool="victim", preempted=True))
    region.replace([worker("v", pool="victim", preempted=True)])

    assert preempted() - start == 1


def test_a_failed_pass_keeps_the_last_capacity_so_the_placed_event_still_comes() -> None:
    obj = builders.make_tenant("premium").model()
    short = tenant.PoolCapacity(pending=4, unschedulable=4, reason="Unschedulable", message=NO_GPU)
    previous = tenant.TenantStatus(regions=[tenant.RegionStatus(name="us-east", capacity=short)])
    pods = {"us-east": region_with(*(worker(f"run-{i}") for i in range(12)))}

    failed = [tenant.RegionStatus(name="us-east", last_error="timed out")]
    assert capacity.observe_regions(obj=obj, statuses=failed, previous=previous, pods=pods) == []
    assert failed[0].capacity == short

    kept = tenant.TenantStatus(regions=failed)
    answered = [tenant.RegionStatus(name="us-east")]
    events = capacity.observe_regions(obj=obj, statuses=answered, previous=kept, pods=pods)
    assert [event[1] for event in events] == ["WorkersPlaced"]
