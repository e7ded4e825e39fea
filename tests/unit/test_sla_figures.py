"""The SLA benchmark's figures (bench/slabench/figures.py): quantiles that keep an
unfinished batch marked as a lower bound, and standard throughput over the window alone."""

from bench.slabench import figures


def batch(
    name: str, *, tenant: str, created: float, completed: float | None
) -> figures.BatchRecord:
    return figures.BatchRecord(
        name=name,
        tenant=tenant,
        phase="Succeeded" if completed is not None else "Running",
        succeeded=100 if completed is not None else 10,
        created=created,
        completed=completed,
        sla_met=completed is not None and completed - created <= 300,
    )


def sample(at: float, *, standard: int, premium: int, running: int) -> figures.Sample:
    pool = figures.PoolSample(
        hpa_replicas=running, hpa_desired=running, running=running, pending=0,
        workers=running, outside_node_pool=0,
    )  # fmt: skip
    return figures.Sample(
        at=at, pools={figures.SHARED: pool}, standard_images=standard, premium_images=premium
    )


def recording(**overrides: object) -> figures.Recording:
    fields: dict[str, object] = {
        "scenario": "shared",
        "premium": "premium",
        "premium_on_shared": True,
        "standard": ["standard-0"],
        "warmup_seconds": 60.0,
        "window_start": 60.0,
        "window_end": 180.0,
        "waited_until": 1000.0,
        "samples": [
            # Warm-up: images made before the window opens must not count.
            sample(0.0, standard=0, premium=0, running=1),
            sample(60.0, standard=500, premium=0, running=8),
            sample(120.0, standard=1300, premium=100, running=8),
            sample(180.0, standard=2100, premium=200, running=6),
            # Drain: after the window, not counted either.
            sample(240.0, standard=2900, premium=300, running=8),
        ],
        "batches": [
            batch("a", tenant="premium", created=100.0, completed=160.0),
            batch("b", tenant="premium", created=130.0, completed=440.0),
            batch("c", tenant="premium", created=160.0, completed=None),
            batch("d", tenant="standard-0", created=90.0, completed=95.0),
        ],
        "preempted": {"standard": 2, "premium": 0},
        "submissions": {"created": 40, "rate_limited": 0, "retried": 0},
    }
    fields.update(overrides)
    return figures.Recording(**fields)  # type: ignore[arg-type]


def summary(found: figures.Recording) -> dict[str, object]:
    return figures.summarize(found, deadline_seconds=300, slots_per_worker=4, image_seconds=2.0)


def test_an_unfinished_batch_counts_with_its_wait_so_far_marked_as_a_lower_bound() -> None:
    times = figures.premium_seconds(recording().batches, premium="premium", waited_until=1000.0)

    assert [str(t) for t in times] == ["60", "310", ">=840"]


def test_nearest_rank_quantiles_are_values_of_the_sample() -> None:
    times = [figures.Quantile(seconds=float(s), lower_bound=False) for s in range(1, 101)]

    assert figures.nearest_rank(times, 0.5) == times[49]
    assert figures.nearest_rank(times, 0.99) == times[98]
    assert figures.nearest_rank(times, 1.0) == times[99]
    assert figures.nearest_rank([], 0.5) is None


def test_standard_throughput_is_counted_over_the_window_alone() -> None:
    found = summary(recording())

    assert found["window_minutes"] == 2.0
    assert found["standard_images"] == 1600
    assert found["standard_images_per_minute"] == 800.0
    assert found["premium_images_in_window"] == 200
    assert found["standard_share_of_shared_pool"] == round(1600 / 1800, 3)
    assert found["shared_pool_running_mean"] == round(22 / 3, 2)


def test_premium_figures_count_met_deadlines_and_unfinished_batches() -> None:
    found = summary(recording())

    assert found["premium_batches"] == 3
    assert found["premium_sla_met"] == 1
    assert found["premium_within_deadline"] == 1
    assert found["premium_unfinished"] == 1
    assert found["premium_seconds_p50"] == "310"
    assert found["premium_seconds_max"] == ">=840"


def test_on_a_dedicated_pool_the_standard_tenants_have_the_shared_pool_to_themselves() -> None:
    found = summary(recording(scenario="dedicated", premium_on_shared=False))

    assert found["standard_share_of_shared_pool"] == 1.0


def test_the_gain_is_a_ratio_that_stays_a_lower_bound_when_its_numerator_is_one() -> None:
    scenarios: dict[str, dict[str, object]] = {
        "baseline": {"standard_images_per_minute": 800.0},
        "dedicated": {
            "standard_images_per_minute": 720.0,
            "premium_seconds_p50": "20",
            "premium_seconds_p99": "40",
            "premium_seconds_max": "50",
        },
        "shared": {
            "standard_images_per_minute": 760.0,
            "premium_seconds_p50": "100",
            "premium_seconds_p99": ">=400",
            "premium_seconds_max": ">=500",
        },
    }

    gains = figures.compare(scenarios)

    assert scenarios["dedicated"]["standard_throughput_vs_baseline"] == 0.9
    assert gains == {
        "premium_seconds_p50_shared_over_dedicated": "5.00",
        "premium_seconds_p99_shared_over_dedicated": ">=10.00",
        "premium_seconds_max_shared_over_dedicated": ">=10.00",
    }
