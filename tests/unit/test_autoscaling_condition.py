"""The Tenant's Autoscaling condition repeats what its HPAs say, region by region."""

from imagegen.api import tenant
from imagegen.controller import autoscaling


def region(name: str, *conditions: tuple[str, str, str], current: int = 3) -> tenant.RegionStatus:
    return tenant.RegionStatus(
        name=name,
        hpa_current_replicas=current,
        hpa_desired_replicas=current,
        conditions=[
            tenant.HPACondition(type=kind, status=status, message=message)  # type: ignore[arg-type]
            for kind, status, message in conditions
        ]
        or None,
    )


ACTIVE = ("ScalingActive", "True", "the HPA was able to compute the replica count")
BLIND = ("ScalingActive", "False", "unable to get metrics for resource cpu")
AT_MAX = ("ScalingLimited", "True", "the desired replica count is more than the maximum")


def test_no_hpa_report_yet_is_unknown_not_a_guess() -> None:
    summary = autoscaling.summarize([region("us-east")])
    assert (summary.status, summary.reason) == ("Unknown", "NotReported")


def test_metrics_missing_in_any_region_says_so_and_names_it() -> None:
    summary = autoscaling.summarize([region("us-east", ACTIVE), region("eu-west", BLIND)])
    assert (summary.status, summary.reason) == ("False", "MetricsUnavailable")
    assert summary.message.startswith("eu-west: unable to get metrics")


def test_a_pool_pinned_at_a_bound_is_scaling_limited() -> None:
    summary = autoscaling.summarize([region("us-east", ACTIVE, AT_MAX, current=50)])
    assert (summary.status, summary.reason) == ("True", "ScalingLimited")
    assert "us-east 50->50" in summary.message


def test_all_well_is_scaling_active_with_replicas_per_region() -> None:
    summary = autoscaling.summarize([region("us-east", ACTIVE), region("eu-west", ACTIVE)])
    assert (summary.status, summary.reason) == ("True", "ScalingActive")
    assert summary.message == "replicas us-east 3->3, eu-west 3->3"
