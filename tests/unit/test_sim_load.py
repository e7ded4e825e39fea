"""The load model (a simulation) turns a pool's work into its pods' CPU."""

import random

from imagegen.sim import load

SHAPE = load.PodShape(request_millicores=500, limit_millicores=1000, slots=4, idle_millicores=10)


def cpu(queued: int, in_flight: int, replicas: int) -> int:
    return load.pod_cpu_millicores(
        queued=queued, in_flight=in_flight, replicas=replicas, shape=SHAPE
    )


def test_an_idle_pool_reads_its_idle_floor() -> None:
    assert cpu(0, 0, 3) == 10


def test_a_full_pool_reads_its_request() -> None:
    assert cpu(0, 12, 3) == 510


def test_a_backlog_reads_up_to_the_limit_and_no_further() -> None:
    assert cpu(100, 12, 3) == 1010
    assert cpu(10_000, 12, 3) == 1010


def test_more_replicas_share_the_same_work() -> None:
    assert cpu(0, 12, 6) < cpu(0, 12, 3)


def noisy(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [
        load.pod_cpu_millicores(queued=0, in_flight=6, replicas=3, shape=SHAPE, noise=0.5, rng=rng)
        for _ in range(20)
    ]


def test_noise_is_seeded_and_never_negative() -> None:
    assert noisy(7) == noisy(7)
    assert noisy(7) != noisy(8)
    assert min(noisy(7)) >= 0


def test_the_annotation_is_a_millicore_quantity() -> None:
    assert load.annotation_value(450) == "450m"
