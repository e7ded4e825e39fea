"""The local stack's one-line view of a pool across regions."""

from __future__ import annotations

from imagegen.localcluster.poolview import PoolState, line


def state(region: str, *, utilization: int | None, current: int, desired: int) -> PoolState:
    return PoolState(
        region=region,
        utilization=utilization,
        current=current,
        desired=desired,
        min_replicas=3,
        max_replicas=50,
    )


def test_a_pool_that_wants_more_shows_an_arrow_and_a_steady_one_does_not() -> None:
    growing = state("us-east", utilization=187, current=3, desired=9)
    steady = state("eu-west", utilization=2, current=3, desired=3)

    assert line([growing, steady]) == (
        "us-east cpu 187%  3->9 [3..50] | eu-west cpu   2%     3 [3..50]"
    )


def test_a_pool_without_metrics_says_so_rather_than_showing_zero() -> None:
    blind = state("asia-pacific", utilization=None, current=3, desired=3)

    assert line([blind]) == "asia-pacific cpu   --     3 [3..50]"
