"""GCRA in a real Redis, one node and the 12-node Redis Cluster: the script the gateway
runs, driven with an explicit clock so that the ideal count is exact and no assertion
depends on how fast this machine is; and, on Redis's own clock, a replica whose clock is
off admits no one else."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from imagegen import ratelimit, redisconn

START = 1_800_000_000.0


@pytest.fixture
def scratch_redis(any_redis: redisconn.Client) -> redisconn.Client:
    """Every test here runs on one node and on the 12-node Redis Cluster."""
    return any_redis


def limit(key: str, *, per_minute: int, burst: int, cost: int = 1) -> ratelimit.Limit:
    return ratelimit.Limit(key=f"{{t}}:{key}", per_minute=per_minute, burst=burst, cost=cost)


async def test_a_burst_of_2000_is_admitted_at_once_and_the_2001st_is_not(
    scratch_redis: redisconn.Client,
) -> None:
    limiter = ratelimit.RateLimiter(redis=scratch_redis)
    premium = limit("burst", per_minute=1000, burst=2000)
    decisions = [(await limiter.decide([premium], now=START)).admitted for _ in range(2001)]
    assert decisions == [True] * 2000 + [False]
    refused = await limiter.decide([premium], now=START)
    assert refused.outcomes[0].remaining == 0
    # One request comes back every 60 ms at 1000/min.
    assert refused.retry_after_seconds == 0.06


async def test_at_ten_times_the_rate_the_admitted_count_is_the_gcra_ideal(
    scratch_redis: redisconn.Client,
) -> None:
    limiter = ratelimit.RateLimiter(redis=scratch_redis)
    rate_per_minute, burst, seconds = 6000, 100, 10
    sent_per_second = 10 * rate_per_minute // 60
    admitted = 0
    for n in range(sent_per_second * seconds):
        now = START + n / sent_per_second
        decision = await limiter.decide(
            [limit("load", per_minute=rate_per_minute, burst=burst)], now=now
        )
        admitted += decision.admitted
    # The burst at once, then one per emission interval over the run's duration.
    elapsed = (sent_per_second * seconds - 1) / sent_per_second
    ideal = burst + int(elapsed * rate_per_minute / 60)
    assert abs(admitted - ideal) <= ideal * 0.01
    assert admitted in (ideal, ideal + 1)


async def test_a_refused_request_charges_none_of_its_limits(
    scratch_redis: redisconn.Client,
) -> None:
    limiter = ratelimit.RateLimiter(redis=scratch_redis)
    requests = limit("requests", per_minute=60, burst=10)
    images = limit("images", per_minute=100, burst=100, cost=60)
    assert (await limiter.decide([requests, images], now=START)).admitted
    refused = await limiter.decide([requests, images], now=START)
    assert not refused.admitted
    assert [outcome.remaining for outcome in refused.outcomes] == [9, 40]
    # Only the images limit refused: 60 images come back 12 s after its burst ran out.
    assert refused.retry_after_seconds == 12.0
    assert (await limiter.decide([requests, images], now=START + 12)).admitted


async def test_time_refills_the_limit_up_to_the_burst_and_no_further(
    scratch_redis: redisconn.Client,
) -> None:
    limiter = ratelimit.RateLimiter(redis=scratch_redis)
    small = limit("refill", per_minute=60, burst=3)
    for _ in range(3):
        await limiter.decide([small], now=START)
    after_an_hour = await limiter.decide([small], now=START + 3600)
    assert after_an_hour.admitted
    assert after_an_hour.outcomes[0].remaining == 2
    assert after_an_hour.outcomes[0].reset_seconds == 1.0


async def test_a_gateway_replica_30_seconds_fast_admits_no_more_than_the_burst(
    scratch_redis: redisconn.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas share one limit (6 a minute, burst 5), taking turns. With its host's
    clock the fast one would find 3 units refilled (30 s / 10 s) and admit 7 of 12 at
    once (seen before the limiter read Redis TIME); on Redis's clock the burst is the
    burst: 5, plus one per 10 s that the run really took."""
    real_time = time.time

    async def fast(call: Callable[[], Awaitable[ratelimit.Decision]]) -> ratelimit.Decision:
        monkeypatch.setattr(time, "time", lambda: real_time() + 30)
        try:
            return await call()
        finally:
            monkeypatch.setattr(time, "time", real_time)

    async def server_seconds() -> float:
        seconds, micros = await scratch_redis.time()
        return seconds + micros / 1e6

    replicas = [ratelimit.RateLimiter(redis=scratch_redis) for _ in range(2)]
    shared = limit("skewed", per_minute=6, burst=5)
    started = await server_seconds()
    admitted = []
    for n in range(12):
        replica = replicas[n % 2]
        call = lambda replica=replica: replica.decide([shared])  # noqa: E731
        admitted.append((await (fast(call) if n % 2 else call())).admitted)
    refilled = int((await server_seconds() - started) / 10)
    assert admitted[:5] == [True] * 5
    assert sum(admitted) <= 5 + refilled
