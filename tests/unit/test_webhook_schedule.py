"""The retry schedule of a webhook delivery: bounded, backing off, honouring Retry-After."""

from __future__ import annotations

import random

import pytest

from imagegen.gateway.webhooks import schedule


def test_each_wait_lies_under_a_doubling_ceiling_up_to_the_cap() -> None:
    policy = schedule.RetryPolicy(max_attempts=12, base_seconds=15, cap_seconds=3600)
    rng = random.Random(7)
    for attempts_made, ceiling in [(1, 15), (2, 30), (3, 60), (8, 1920), (9, 3600), (11, 3600)]:
        waits = [
            policy.delay(attempts_made=attempts_made, retry_after=None, rng=rng) for _ in range(200)
        ]
        assert all(w is not None and 0 <= w <= ceiling for w in waits)
        # Full jitter: the waits spread over the whole range, not bunched at the ceiling.
        assert min(w for w in waits if w is not None) < ceiling / 4


def test_the_schedule_ends_after_max_attempts() -> None:
    policy = schedule.RetryPolicy(max_attempts=3)
    rng = random.Random(1)

    assert policy.delay(attempts_made=2, retry_after=None, rng=rng) is not None
    assert policy.delay(attempts_made=3, retry_after=None, rng=rng) is None
    assert policy.delay(attempts_made=3, retry_after=5, rng=rng) is None


def test_retry_after_replaces_the_backoff_up_to_the_cap() -> None:
    policy = schedule.RetryPolicy(base_seconds=1, cap_seconds=600)
    rng = random.Random(1)

    assert policy.delay(attempts_made=1, retry_after=120, rng=rng) == 120
    assert policy.delay(attempts_made=1, retry_after=86_400, rng=rng) == 600


def test_the_default_schedule_is_ten_attempts_within_about_two_hours() -> None:
    policy = schedule.RetryPolicy()
    ceilings = [min(policy.cap_seconds, policy.base_seconds * 2 ** (n - 1)) for n in range(1, 10)]

    assert policy.max_attempts == 10
    assert sum(ceilings) == 7425


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        schedule.RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_seconds"):
        schedule.RetryPolicy(base_seconds=10, cap_seconds=5)
