"""The dispatcher: delivers outbox entries, signed, and settles each attempt.

Two intakes feed one delivery step: new entries of the stream (read as the consumer group
`dispatchers`, together with entries a dead dispatcher left pending, XAUTOCLAIM) and
retries that came due in the retry schedule. Every attempt re-checks the URL with the
SSRF guard and connects to the addresses it checked. Delivery is at least once: a
dispatcher killed between the receiver's answer and the settle step sends that message
again, with the same `webhook-id`, so receivers can drop the duplicate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence

import httpx2
import lightkube
from redis import exceptions as redis_errors

from imagegen import logs, redisconn
from imagegen.gateway.webhooks import delivery, loops, outbox, schedule, secretstore, signing, ssrf
from imagegen.metrics import gateway as catalogue

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """How the dispatcher paces itself."""

    policy: schedule.RetryPolicy = dataclasses.field(default_factory=schedule.RetryPolicy)
    timeout_seconds: float = delivery.TIMEOUT_SECONDS
    """Per attempt, connection and response included."""
    lease_seconds: float = 60.0
    """How long an attempt may take before another dispatcher takes the entry over: well
    above the attempt timeout, so a live dispatcher is never overtaken."""
    batch_size: int = 16
    """Entries taken at once, and delivered concurrently."""
    block_ms: int = 1000
    """How long a read of the stream waits for new entries."""
    retry_poll_seconds: float = 0.5
    """How often the retry schedule is looked at when nothing was due."""
    error_backoff_seconds: float = 2.0
    """Pause after Redis failed, before the loop tries again."""


class Dispatcher:
    """Delivers the outbox as one consumer of the group `dispatchers`."""

    def __init__(
        self,
        *,
        redis: redisconn.Client,
        secrets: secretstore.SecretSource,
        allowlist: Sequence[str],
        consumer: str,
        options: Options | None = None,
        resolver: ssrf.Resolver | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._redis = redis
        self._secrets = secrets
        self._allowlist = list(allowlist)
        ssrf.Allowlist.parse(self._allowlist)  # a bad setting fails at start, not per send
        self._consumer = consumer
        self._options = options or Options()
        self._resolver = resolver
        # Host time for retry due times and leases: a skew moves a retry by itself and never
        # changes how many are made (README, "One clock").
        self._clock = clock
        self._outcomes = Outcomes(
            policy=self._options.policy, clock=clock, rng=rng or random.SystemRandom()
        )
        self._group_ready = False

    async def run(self) -> None:
        """Deliver until cancelled; a Redis that is down is waited for."""
        # A TaskGroup, not gather: cancelling run() ends when both loops have ended.
        async with asyncio.TaskGroup() as loops_running:
            loops_running.create_task(self._guarded(self._intake_once))
            loops_running.create_task(self._guarded(self._retries_once))

    async def _guarded(self, step: Callable[[], Awaitable[None]]) -> None:
        await loops.repeat(
            step,
            retry_on=(redis_errors.RedisError, OSError),
            on_error=self._redis_failed,
            pause_seconds=self._options.error_backoff_seconds,
        )

    def _redis_failed(self, error: Exception) -> None:
        if "NOGROUP" in str(error):  # a Redis that lost its data: make it again
            self._group_ready = False
        logger.warning("webhook dispatcher: Redis failed, retrying: %s", error)

    async def _intake_once(self) -> None:
        if not self._group_ready:
            await outbox.ensure_group(self._redis)
            self._group_ready = True
        # Sampled once a loop (at least every block_ms): one XLEN, whoever appended.
        catalogue.WEBHOOK_OUTBOX.set(await outbox.depth(self._redis))
        entries = await outbox.claim_abandoned(
            self._redis,
            consumer=self._consumer,
            min_idle_ms=int(self._options.lease_seconds * 1000),
            count=self._options.batch_size,
        )
        if not entries:
            entries = await outbox.read_new(
                self._redis,
                consumer=self._consumer,
                count=self._options.batch_size,
                block_ms=self._options.block_ms,
            )
        await self._deliver_all(entries)

    async def _retries_once(self) -> None:
        entries = await outbox.take_due(
            self._redis,
            now=self._clock(),
            lease_seconds=self._options.lease_seconds,
            limit=self._options.batch_size,
        )
        if entries:
            await self._deliver_all(entries)
        else:
            await asyncio.sleep(self._options.retry_poll_seconds)

    async def _deliver_all(self, entries: list[outbox.Entry]) -> None:
        await asyncio.gather(*(self._deliver(entry) for entry in entries))

    async def _deliver(self, entry: outbox.Entry) -> None:
        if entry.malformed:
            logger.error(
                "webhook outbox entry %s unreadable, dropped: %s", entry.entry_id, entry.malformed
            )
            outcome = outbox.Outcome(state="failed", attempts=0, error=entry.malformed)
            await outbox.settle(self._redis, entry=entry, outcome=outcome, now=self._clock())
            return
        with logs.bound(tenant=entry.tenant):
            attempts = await outbox.attempts_made(self._redis, entry.entry_id) + 1
            try:
                outcome = await self._attempt(entry, attempts=attempts)
            except (redis_errors.RedisError, OSError):
                raise  # the loop waits for Redis and tries the entry again
            except Exception as error:  # one entry must not stop every tenant's delivery
                logger.exception("webhook %s: delivery failed unexpectedly", entry.msg_id)
                outcome = outbox.Outcome(
                    state="failed", attempts=attempts, error=f"internal error: {error!r}"
                )
            self._log(entry, outcome)
            await outbox.settle(self._redis, entry=entry, outcome=outcome, now=self._clock())
            _count(entry, outcome)

    def _log(self, entry: outbox.Entry, outcome: outbox.Outcome) -> None:
        logger.info(
            "webhook %s %s for tenant %s to %s: %s (attempt %d%s%s)",
            entry.msg_id,
            entry.type,
            entry.tenant,
            _shown(entry.url),
            outcome.state,
            outcome.attempts,
            f", HTTP {outcome.status}" if outcome.status is not None else "",
            f", {outcome.error}" if outcome.error else "",
        )

    async def _attempt(self, entry: outbox.Entry, *, attempts: int) -> outbox.Outcome:
        if await outbox.is_disabled(self._redis, tenant=entry.tenant, url=entry.url):
            return outbox.Outcome(
                state="disabled", attempts=attempts - 1, error="endpoint answered 410 Gone before"
            )
        target = await check(
            entry.url,
            allowlist=self._allowlist,
            resolver=self._resolver,
            attempts=attempts,
            outcomes=self._outcomes,
        )
        if isinstance(target, outbox.Outcome):
            return target
        try:
            secret = await self._secrets.get(entry.tenant)
        except (lightkube.ApiError, httpx2.HTTPError) as error:
            return self._outcomes.retry_or_fail(
                attempts=attempts,
                response=delivery.Response(error=f"signing secrets unreadable: {error}"),
            )
        if secret is None:
            return self._outcomes.retry_or_fail(
                attempts=attempts, response=delivery.Response(error="no signing secret yet")
            )
        timestamp = int(self._clock())
        response = await delivery.post(
            target=target,
            url=entry.url,
            body=entry.body,
            headers=signing.headers(
                secret=secret, msg_id=entry.msg_id, timestamp=timestamp, body=entry.body
            ),
            timeout_seconds=self._options.timeout_seconds,
        )
        catalogue.WEBHOOK_DELIVERIES.labels(
            entry.tenant, catalogue.code_class(response.status)
        ).inc()
        if response.status is not None and 200 <= response.status < 300:
            return outbox.Outcome(state="delivered", attempts=attempts, status=response.status)
        if response.status == 410:
            await outbox.disable(self._redis, tenant=entry.tenant, url=entry.url, now=self._clock())
            return outbox.Outcome(
                state="disabled", attempts=attempts, status=410, error="endpoint is gone"
            )
        return self._outcomes.retry_or_fail(attempts=attempts, response=response)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcomes:
    """How a failed attempt ends: retried on the schedule, or given up once it is spent."""

    policy: schedule.RetryPolicy
    clock: Callable[[], float]
    rng: random.Random

    def retry_or_fail(self, *, attempts: int, response: delivery.Response) -> outbox.Outcome:
        """The outcome of attempt number `attempts`, which got `response`."""
        error = response.error or f"HTTP {response.status}"
        delay = self.policy.delay(
            attempts_made=attempts, retry_after=response.retry_after, rng=self.rng
        )
        if delay is None:
            return outbox.Outcome(
                state="failed",
                attempts=attempts,
                status=response.status,
                error=f"gave up after {attempts} attempts: {error}",
            )
        return outbox.Outcome(
            state="retrying",
            attempts=attempts,
            status=response.status,
            error=error,
            due=self.clock() + delay,
        )


async def check(
    url: str,
    *,
    allowlist: Sequence[str],
    resolver: ssrf.Resolver | None,
    attempts: int,
    outcomes: Outcomes,
) -> ssrf.Target | outbox.Outcome:
    """What attempt number `attempts` may connect to, or how it ends without sending: failed
    for good when the guard refuses the URL, retried when the resolver failed for a moment
    (EAI_AGAIN, no answer in time), which says nothing about the URL."""
    try:
        return await ssrf.check_url(url, allowlist=allowlist, resolver=resolver)
    except ssrf.ResolutionUnavailable as unresolved:
        return outcomes.retry_or_fail(
            attempts=attempts, response=delivery.Response(error=str(unresolved))
        )
    except ssrf.UnsafeWebhookURL as refused:
        # Not counted as an attempt: nothing was sent.
        return outbox.Outcome(state="failed", attempts=attempts - 1, error=f"refused: {refused}")


def _count(entry: outbox.Entry, outcome: outbox.Outcome) -> None:
    """Count a settled attempt's retry or its end (the attempt itself is counted when the
    receiver was called); only the tenant and a reason, never the URL."""
    if outcome.state == "retrying":
        catalogue.WEBHOOK_RETRIES.labels(entry.tenant).inc()
    elif outcome.state in ("failed", "disabled"):
        catalogue.WEBHOOK_FAILURES.labels(entry.tenant, _failure_reason(outcome)).inc()


def _failure_reason(outcome: outbox.Outcome) -> str:
    if outcome.state == "disabled":
        return "gone"
    return "refused" if outcome.error.startswith("refused:") else "exhausted"


def _shown(url: str) -> str:
    """The URL without path and query, which may carry tokens: fit for logs."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
