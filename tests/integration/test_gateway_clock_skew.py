"""A gateway replica on a host whose clock runs 30 s fast, as a real `imagegen gateway`
process (its wall clock moved by `fakeclock.c` through LD_PRELOAD) beside the session's
gateway, both on the same management Redis: who is admitted does not change, since the
limiter reads Redis TIME. (test_ratelimit_gcra.py shows the same on the limiter alone.)"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration import fakeclock, gatewayproc, waiting
from tests.integration.gatewayworld import GatewayWorld

FAST_SECONDS = 30


@pytest.fixture(scope="module")
def fast_gateway(
    running_gateway: gatewayproc.GatewayProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gatewayproc.GatewayProcess]:
    """A second replica of the session's gateway whose host clock is 30 s fast."""
    workdir = tmp_path_factory.mktemp("gateway-fast")
    gateway = gatewayproc.GatewayProcess(
        kubeconfig=running_gateway.kubeconfig,
        redis_url=running_gateway.redis_url,
        workdir=workdir,
        # Webhooks stay with the session's replica: this one is here for its limits.
        extra_settings={"webhooks_enabled": False},
        command_prefix=fakeclock.prefix(
            library=fakeclock.build(workdir), offset_seconds=FAST_SECONDS
        ),
    )
    gateway.start()
    yield gateway
    gateway.stop()


def clock_ahead(answer: httpx.Response) -> float:
    """How far ahead of this host the answering process's clock is (its Date header)."""
    return email.utils.parsedate_to_datetime(answer.headers["date"]).timestamp() - time.time()


def test_a_replica_30_s_fast_admits_exactly_whom_the_other_would(
    gateway_world: GatewayWorld, fast_gateway: gatewayproc.GatewayProcess
) -> None:
    # Two requests a minute, a burst of 6: a unit comes back every 30 s, none while the
    # test runs, so with its own clock the fast replica would find one more at each turn.
    _, key = gateway_world.ready_tenant("skew", requests_per_minute=2, burst=6)
    auth = {"Authorization": f"Bearer {key}"}
    replicas = [
        httpx.Client(base_url=gateway_world.gateway.url, headers=auth, timeout=30),
        httpx.Client(base_url=fast_gateway.url, headers=auth, timeout=30),
    ]
    try:
        # An unknown key is refused before the limit: only the 200 spends a request.
        waiting.until(
            lambda: replicas[1].get("/api/v1/batches").status_code == 200,
            timeout=60, what="the fast replica accepts the key",
        )  # fmt: skip
        started = time.monotonic()
        answers = [replicas[n % 2].get("/api/v1/batches") for n in range(10)]
        elapsed = time.monotonic() - started
    finally:
        for client in replicas:
            client.close()

    assert elapsed < 30, "a unit may have come back: the count below would not hold"
    assert abs(clock_ahead(answers[0])) < 5
    assert FAST_SECONDS - 5 < clock_ahead(answers[1]) < FAST_SECONDS + 5
    # Two of the six spent on the keys' first use, one on each replica.
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 6
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers] == [3, 2, 1, 0] + [0] * 6
    waits = [int(a.headers["retry-after"]) for a in answers[4:]]
    assert max(waits) - min(waits) <= 2, f"the replicas disagree on when to retry: {waits}"
