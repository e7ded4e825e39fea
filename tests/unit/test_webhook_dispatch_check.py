"""The dispatcher's check before each send: a URL the guard refuses fails for good, a
resolver failing for a moment is retried on the schedule and then sent, and the schedule
still ends."""

from __future__ import annotations

import random
import socket
from collections.abc import Sequence

from imagegen.gateway.webhooks import dispatcher, outbox, schedule, ssrf

URL = "https://hooks.example.com/imagegen"
NOW = 1_000_000.0
POLICY = schedule.RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=60)


def outcomes() -> dispatcher.Outcomes:
    return dispatcher.Outcomes(policy=POLICY, clock=lambda: NOW, rng=random.Random(7))


class FlakyDns:
    """Fails with EAI_AGAIN `failures` times, then answers with a public address."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.asked = 0

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked += 1
        if self.asked <= self.failures:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return ["93.184.216.34"]


async def check(dns: ssrf.Resolver, *, attempts: int) -> ssrf.Target | outbox.Outcome:
    return await dispatcher.check(
        URL, allowlist=[], resolver=dns, attempts=attempts, outcomes=outcomes()
    )


async def test_a_host_that_fails_to_resolve_for_a_moment_is_retried_then_sent() -> None:
    dns = FlakyDns(failures=1)

    first = await check(dns, attempts=1)
    second = await check(dns, attempts=2)

    assert isinstance(first, outbox.Outcome)
    assert (first.state, first.attempts) == ("retrying", 1)
    assert "did not resolve for now" in first.error
    assert first.due is not None
    assert NOW <= first.due <= NOW + POLICY.base_seconds
    assert second == ssrf.Target(
        scheme="https", host="hooks.example.com", port=443, addresses=("93.184.216.34",)
    )


async def test_a_host_that_never_resolves_again_fails_once_the_schedule_is_spent() -> None:
    last = await check(FlakyDns(failures=10), attempts=POLICY.max_attempts)

    assert isinstance(last, outbox.Outcome)
    assert last.state == "failed"
    assert last.error.startswith(f"gave up after {POLICY.max_attempts} attempts: host ")


async def test_a_url_the_guard_refuses_fails_at_once_and_counts_no_attempt() -> None:
    async def private(host: str, port: int) -> Sequence[str]:
        return ["10.0.0.7"]

    refused = await check(private, attempts=1)

    assert isinstance(refused, outbox.Outcome)
    assert (refused.state, refused.attempts, refused.due) == ("failed", 0, None)
    assert refused.error.startswith("refused: hooks.example.com resolves to 10.0.0.7")


async def test_a_name_that_does_not_exist_fails_at_once_not_retried() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    refused = await check(nxdomain, attempts=1)

    assert isinstance(refused, outbox.Outcome)
    assert (refused.state, refused.attempts) == ("failed", 0)
    assert "does not resolve" in refused.error
