"""One leased item, start to finish.

1. Decode the payload (`queue.payload.WorkItem`); a malformed one fails at once, since no
   retry can fix it.
2. If the item's image is already stored (an earlier delivery stored it, then lost its
   lease, its worker or the queue's record of it before the result was recorded),
   complete with that object: the image is never made twice, nor stored under another
   name.
3. Otherwise generate it with the item's providers (the one it asks for first), while a
   renewal task extends the lease every third of its length. A lost lease (taken back,
   cancelled, forgotten) stops the work: another delivery owns the item now.
4. Confirm the lease once more, store the image, record the result. The result is
   `{uri, provider, contentType, width, height, bytes, sha256, fallbacks}`, where each
   fallback is a provider that failed first: `{provider, error, retryable}`.

The object store being away or refusing (an outage, wrong credentials) delays the item,
never fails it: reading and writing the store are retried with backoff for as long as the
lease is held, and renewed, and every failed try is counted and reported to the operator
(`storehealth`), which shows it on the batch.

A provider error fails the attempt; the queue requeues it while attempts remain and the
error is retryable. A stopping worker sets `abandon`: work still generating is dropped and
the item handed back without using an attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal, Protocol, TypeVar

import tenacity
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from imagegen.api import objectstore
from imagegen.queue import core, model, payload
from imagegen.storage import base as storage
from imagegen.worker import instrument, storehealth
from imagegen.worker.providers import base, chain

logger = logging.getLogger(__name__)

Disposition = Literal["succeeded", "reused", "failed", "requeued", "lost", "released", "dropped"]
"""What became of a delivery: stored and recorded; completed with the image already
stored; failed for good; failed and queued again; lease lost, so left to its new owner;
handed back by a stopping worker; finished, but the queue no longer wanted the result."""

Interruption = Literal["lost", "abandoned"]
_T = TypeVar("_T")

PROMPT_LOG_CHARS = 80
_OUTAGE_FIRST_DELAY_SECONDS = 0.1
_OUTAGE_MAX_DELAY_SECONDS = 1.0
"""Prompts are tenants' data: logs show at most this much of one."""
STORE_RETRY_FIRST_SECONDS = 0.2
STORE_RETRY_MAX_SECONDS = 5.0
"""Backoff between tries of the store: from a blink (a dropped connection) up to a few
seconds (an outage), so an item resumes within seconds of the store's return."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Made:
    """An image generated and stored."""

    outcome: chain.Outcome
    stored: storage.StoredObject
    metadata: dict[str, str]


class LeaseKeeper(Protocol):
    """What an item needs of its queue; `core.Queue` is one."""

    lease_seconds: float

    async def renew(self, *, lease: model.Lease) -> bool:
        """Extend the lease; False when it is no longer held."""
        ...

    async def complete(self, *, lease: model.Lease, result: model.Json) -> bool:
        """Record the result; False when the item was already finished or cancelled."""
        ...

    async def fail(self, *, lease: model.Lease, error: str, retryable: bool) -> core.FailOutcome:
        """Report a failed attempt."""
        ...

    async def release(self, *, lease: model.Lease) -> bool:
        """Hand the item back without using an attempt."""
        ...


class ItemRunner:
    """Runs leased items through providers into storage; one instance serves every slot."""

    def __init__(
        self,
        *,
        queue: LeaseKeeper,
        providers: Mapping[str, base.Provider],
        store: storage.Store,
        clock: Callable[[], float] = time.time,
        region: str = "",
        health: storehealth.Reporter | None = None,
    ) -> None:
        """`providers`: what this worker runs, by name. `clock`: the queue's clock (wall
        time), to tell when a lease that could not be renewed has run out. `region`: the
        region label of the worker's metrics. `health`: where store trouble is reported."""
        self.abandon = asyncio.Event()
        """Set by a stopping worker: items still generating are handed back."""
        self._queue = queue
        self._providers = dict(providers)
        self._store = store
        self._clock = clock
        self._region = region
        self._health = health

    async def run(self, *, lease: model.Lease) -> Disposition:
        """Take one delivery to its end. Redis errors propagate (the lease then expires
        and the item comes back); anything else is recorded as a retryable failure."""
        try:
            return await self._run(lease=lease)
        except RedisError:
            raise
        except Exception as error:
            # A bug or a broken disk, not the provider: record it on the item rather than
            # let the lease run out silently, and let the queue's attempts bound it.
            logger.exception("item %s: unexpected error", _name(lease))
            return await self._fail(
                lease=lease, error=f"worker error: {type(error).__name__}: {error}", retryable=True
            )

    async def _run(self, *, lease: model.Lease) -> Disposition:
        try:
            work = payload.WorkItem.from_json(lease.payload)
            name = objectstore.ImageName(
                tenant=lease.tenant,
                batch_uid=lease.batch_uid,
                item_id=lease.item_id,
                format=work.format,
            )
        except ValueError as error:
            return await self._fail(lease=lease, error=str(error), retryable=False)
        logger.debug(
            "item %s: attempt %d, %dx%d %s, prompt %r",
            _name(lease),
            lease.attempt,
            work.width,
            work.height,
            work.format,
            clip(text=work.prompt),
        )
        # Every delivery looks first, not only a redelivery: a queue that lost its data
        # (a Redis restarted without persistence) enqueues its unfinished items afresh,
        # as first deliveries, and some of them were stored before the loss. One HEAD of
        # the store is cheap next to making an image twice.
        existing = await self._hold(lease=lease, work=self._with_store(lambda: self._reuse(name)))
        if isinstance(existing, str):
            if existing == "abandoned" and await self._queue.release(lease=lease):
                return "released"
            return "lost"
        if existing is not None:
            recorded = await self._queue.complete(lease=lease, result=existing)
            logger.debug("item %s: already stored, completed with the stored image", _name(lease))
            return "reused" if recorded else "dropped"
        try:
            made = await self._hold(
                lease=lease, work=self._make_and_store(lease=lease, work=work, name=name)
            )
        except base.ProviderError as error:
            if isinstance(error, chain.AllFailed):
                instrument.provider_failed(
                    lease=lease, region=self._region, failures=error.failures
                )
            return await self._fail(lease=lease, error=error.message, retryable=error.retryable)
        if made == "abandoned" and await self._queue.release(lease=lease):
            logger.warning("item %s: handed back unfinished (stopping)", _name(lease))
            return "released"
        if not isinstance(made, _Made):
            # Another delivery owns the item now; storing or recording could only race it.
            logger.warning("item %s: lease lost, result dropped", _name(lease))
            return "lost"
        result = result_of(outcome=made.outcome, uri=made.stored.uri, metadata=made.metadata)
        recorded = await self._through_outage(
            lease=lease, call=lambda: self._queue.complete(lease=lease, result=result)
        )
        logger.info("item %s: stored by %s", _name(lease), made.outcome.provider)
        return "succeeded" if recorded else "dropped"

    async def _through_outage(
        self, *, lease: model.Lease, call: Callable[[], Coroutine[Any, Any, _T]]
    ) -> _T:
        """`call`, tried again on a connection error for up to one lease period: a Redis
        that fails over (a replica promoted in a few seconds) must not cost an image made
        already. Late is safe: a lost lease answers no, and the first result wins."""
        deadline = self._clock() + self._queue.lease_seconds
        delay = _OUTAGE_FIRST_DELAY_SECONDS
        while True:
            try:
                return await call()
            except (RedisConnectionError, RedisTimeoutError) as error:
                if self._clock() + delay > deadline:
                    raise
                logger.warning("item %s: redis unreachable (%s); retrying", _name(lease), error)
                await asyncio.sleep(delay)
                delay = min(2 * delay, _OUTAGE_MAX_DELAY_SECONDS)

    async def _make_and_store(
        self, *, lease: model.Lease, work: payload.WorkItem, name: objectstore.ImageName
    ) -> _Made | Literal["lost"]:
        """Generate, confirm the lease, store: one piece of work under one `_hold`, so
        the lease is renewed throughout (a store outage included)."""
        started = time.perf_counter()
        outcome = await self._generate(work=work)
        seconds = time.perf_counter() - started
        instrument.generated(lease=lease, region=self._region, outcome=outcome, seconds=seconds)
        # One line per image made, written before anything else can go wrong: the count
        # of generations survives a worker killed before it stored the image.
        logger.debug(
            "item %s: generated by %s in %.2f s (attempt %d)",
            _name(lease), outcome.provider, seconds, lease.attempt,
        )  # fmt: skip
        if not await self._through_outage(lease=lease, call=lambda: self._queue.renew(lease=lease)):
            return "lost"
        stored, metadata = await self.upload(lease=lease, outcome=outcome, name=name)
        return _Made(outcome=outcome, stored=stored, metadata=metadata)

    async def upload(
        self, *, lease: model.Lease, outcome: chain.Outcome, name: objectstore.ImageName
    ) -> tuple[storage.StoredObject, dict[str, str]]:
        """Store a generated image under its name, with its metadata, retrying while the
        store fails (the caller holds the lease meanwhile); the object and its metadata."""
        data = outcome.image.data
        sha256 = await storage.digest(data=data, function=_sha256_hex)
        metadata = metadata_of(lease=lease, outcome=outcome, sha256=sha256)
        stored = await self._with_store(
            lambda: self._store.put(name=name, data=data, metadata=metadata)
        )
        return stored, metadata

    async def _reuse(self, name: objectstore.ImageName) -> model.Json | None:
        found = await self._store.head(key=name.key)
        return None if found is None else stored_result(stored=found)

    async def _with_store(self, call: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """`call` retried with capped, jittered backoff while the store fails; the lease
        (`_hold`) bounds it. Each failure is counted and reported; a success clears it."""
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(storage.StoreError),
            wait=tenacity.wait_exponential_jitter(
                multiplier=STORE_RETRY_FIRST_SECONDS, max=STORE_RETRY_MAX_SECONDS
            ),
            before_sleep=self._store_failed,
            reraise=True,
        )

        async def attempt() -> _T:
            # A coroutine function: tenacity would not await a lambda's coroutine.
            return await call()

        result: _T = await retrying(attempt)
        if self._health is not None:
            await self._health.recovered()
        return result

    async def _store_failed(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if not isinstance(error, storage.StoreError):
            return
        instrument.store_failed(region=self._region, reason=error.reason)
        logger.warning("object store failed (try %d, retrying): %s", state.attempt_number, error)
        if self._health is not None:
            await self._health.failed(error=error)

    async def _generate(self, *, work: payload.WorkItem) -> chain.Outcome:
        providers = chain_for(work=work, providers=self._providers)
        return await providers.generate(request=request_of(work=work), preferred=work.provider)

    async def _hold(
        self, *, lease: model.Lease, work: Coroutine[Any, Any, _T]
    ) -> _T | Interruption:
        """Run `work` while the lease is renewed; stop it when the lease is lost or the
        worker abandons its items. Exceptions of `work` propagate."""
        task = asyncio.create_task(work)
        renewer = asyncio.create_task(self._renew_until_lost(lease=lease))
        abandoned = asyncio.create_task(self.abandon.wait())
        try:
            await asyncio.wait((task, renewer, abandoned), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, renewer, abandoned):
                if not pending.done():
                    pending.cancel()
            # Cancelled work must finish unwinding before the item is released or left.
            await asyncio.wait((task, renewer, abandoned))
        if not task.cancelled():
            return task.result()
        if renewer.done() and not renewer.cancelled():
            renewer.result()
            return "lost"
        return "abandoned"

    async def _renew_until_lost(self, *, lease: model.Lease) -> None:
        """Renew every third of the lease; return once it is lost. A Redis error is
        retried at the next turn, until the lease has run out without a renewal."""
        interval = self._queue.lease_seconds / 3
        held_until = lease.expires_at
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._queue.renew(lease=lease):
                    return
            except RedisError as error:
                if self._clock() >= held_until:
                    logger.warning("item %s: lease ran out unrenewed (%s)", _name(lease), error)
                    return
                logger.warning("item %s: renewing the lease failed (%s)", _name(lease), error)
                continue
            held_until = self._clock() + self._queue.lease_seconds

    async def _fail(self, *, lease: model.Lease, error: str, retryable: bool) -> Disposition:
        outcome = await self._queue.fail(lease=lease, error=error, retryable=retryable)
        logger.warning(
            "item %s: attempt %d failed (%s, %s): %s",
            _name(lease),
            lease.attempt,
            "retryable" if retryable else "final",
            outcome,
            error,
        )
        if outcome == "dropped":
            return "lost"
        return "requeued" if outcome == "requeued" else "failed"


def chain_for(
    *, work: payload.WorkItem, providers: Mapping[str, base.Provider]
) -> chain.ProviderChain:
    """The item's providers that this worker runs, in the item's order.

    A shared pool runs the providers its platform configured; a tenant's fallback it does
    not run is skipped. The provider the item asks for must run here, and at least one
    must: otherwise a non-retryable ProviderError (every worker of a pool runs the same).
    """
    runs = ", ".join(providers)
    if work.provider is not None and work.provider not in providers:
        raise base.ProviderError(
            f"provider {work.provider!r} does not run on this worker (it runs: {runs})",
            retryable=False,
        )
    usable = [providers[name] for name in work.providers if name in providers]
    if not usable:
        raise base.ProviderError(
            f"none of the providers {', '.join(work.providers)} runs on this worker "
            f"(it runs: {runs})",
            retryable=False,
        )
    return chain.ProviderChain(providers=usable)


def request_of(*, work: payload.WorkItem) -> base.GenerationRequest:
    """What a provider is asked to make for the item."""
    return base.GenerationRequest(
        prompt=work.prompt,
        negative_prompt=work.negative_prompt,
        width=work.width,
        height=work.height,
        seed=work.seed,
        format=work.format,
    )


def metadata_of(*, lease: model.Lease, outcome: chain.Outcome, sha256: str) -> dict[str, str]:
    """The object's user metadata (`objectstore.METADATA_FIELDS`); `sha256` is the hex
    SHA-256 of the image."""
    image = outcome.image
    return {
        "tenant": lease.tenant,
        "batch": lease.batch_uid,
        "item": lease.item_id,
        "provider": outcome.provider,
        "sha256": sha256,
        "width": str(image.width),
        "height": str(image.height),
    }


def result_of(*, outcome: chain.Outcome, uri: str, metadata: dict[str, str]) -> model.Json:
    """The result recorded for a generated and stored image."""
    image = outcome.image
    return {
        "uri": uri,
        "provider": outcome.provider,
        "contentType": image.content_type,
        "width": image.width,
        "height": image.height,
        "bytes": len(image.data),
        "sha256": metadata["sha256"],
        "fallbacks": [
            {"provider": failure.provider, "error": failure.message, "retryable": failure.retryable}
            for failure in outcome.failures
        ],
    }


def stored_result(*, stored: storage.StoredObject) -> model.Json | None:
    """The result for an image already stored, from its metadata; None when the object
    lacks it (stored by something else: the image is made anew). `reused` says why the
    item made no new image."""
    try:
        width = int(stored.metadata["width"])
        height = int(stored.metadata["height"])
        sha256 = stored.metadata["sha256"]
    except (KeyError, ValueError):
        return None
    return {
        "uri": stored.uri,
        "provider": stored.metadata.get("provider"),
        "contentType": stored.content_type,
        "width": width,
        "height": height,
        "bytes": stored.size,
        "sha256": sha256,
        "fallbacks": [],
        "reused": True,
    }


def clip(*, text: str) -> str:
    """`text` cut to PROMPT_LOG_CHARS, marked when cut."""
    if len(text) <= PROMPT_LOG_CHARS:
        return text
    return text[: PROMPT_LOG_CHARS - 3] + "..."


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _name(lease: model.Lease) -> str:
    return f"{lease.batch_uid}/{lease.item_id}"
