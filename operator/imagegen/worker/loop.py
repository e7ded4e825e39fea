"""The consume loop: `concurrency` slots, each leasing and running one item at a time.

Slots are asyncio tasks; the generation itself runs off the event loop (providers render
in threads or await the network), so one loop keeps every lease renewed and the probes
answering while images are made. Redis being away is waited out with a capped backoff
(readiness says so meanwhile): the items it holds come back to some worker by their leases.

Stopping (SIGTERM, a scale-down or a rollout): lease nothing new, let the items in flight
finish for up to `grace_seconds`, then hand back what is still generating
(`Queue.release`, which costs the item no attempt) and return. A worker killed outright
hands back nothing; its leases expire and the next `lease` anywhere takes them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import socket

from redis.exceptions import RedisError

from imagegen import logs, redisconn
from imagegen.api import objectstore, redisconfig
from imagegen.metrics import worker as metrics
from imagegen.queue import core, keys
from imagegen.storage import base as store_base
from imagegen.storage import stores
from imagegen.worker import health, instrument, items, storehealth
from imagegen.worker.providers import base, chain, registry

logger = logging.getLogger(__name__)

HANDBACK_SECONDS = 10.0
"""After the grace, how long handing back may take before the slots are cancelled (their
leases then expire on their own)."""
PING_SECONDS = 1.0
"""Bound on the readiness probe's PING: the kubelet gives a probe 1 s by default, and a
hung Redis must read as not ready, not as a probe that never answers."""
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
"""The Redis of a worker started by hand with no --redis-url: a local one."""
_BACKOFF_FIRST_SECONDS = 0.5
_BACKOFF_MAX_SECONDS = 10.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """Everything a worker process needs; the CLI fills it from flags and IMAGEGEN_* env."""

    region: str
    """The region whose Redis this worker serves; for logs and the worker id."""
    pool: str
    """`shared` or `dedicated-<tenant>` (see `queue.keys`): the queue it consumes."""
    redis: redisconfig.RedisConnection = dataclasses.field(
        default_factory=lambda: redisconfig.RedisConnection(url=DEFAULT_REDIS_URL)
    )
    """The region's Redis, as the worker Deployment's IMAGEGEN_REDIS_* variables say."""
    redis_credentials: redisconn.Credentials = dataclasses.field(
        default_factory=redisconn.Credentials
    )
    """Its password and CA bundle, read at start (the password from a Secret, through the
    environment or a file); their repr leaves the password out."""
    concurrency: int = 4
    """Items generated at once."""
    lease_seconds: float = 30.0
    """Lease length, renewed every third of it. Short enough that a killed worker's items
    come back well within a 5-minute SLA, long enough that a Redis hiccup of a few
    seconds does not cost a renewal."""
    max_attempts: int = 3
    """Leases an item gets before it fails; the same number the operator's queue uses."""
    store: objectstore.ObjectStore = dataclasses.field(
        default_factory=lambda: objectstore.ObjectStore(url=pathlib.Path("out").resolve().as_uri())
    )
    """The region's object store: images go to `<tenant>/<batch uid>/<item id>.<ext>` in it.
    An S3 store's credentials come from botocore's chain: AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY from the pool's Secret, or the pod's role."""
    providers: tuple[str, ...] = ("local",)
    """The providers this worker runs (IMAGEGEN_PROVIDERS); items use those they list."""
    provider_settings: registry.ProviderSettings = dataclasses.field(
        default_factory=registry.ProviderSettings
    )
    grace_seconds: float = 45.0
    """How long a stopping worker lets items finish before handing them back: below the
    pod's terminationGracePeriodSeconds (60 by default), so hand-back happens before the
    kubelet's SIGKILL."""
    port: int = 8080
    """Port of /healthz and /readyz (the Deployment's `http` port); 0 serves none."""
    host: str = "0.0.0.0"  # noqa: S104 (the kubelet probes the pod's IP)
    """Address the probe endpoints listen on."""
    poll_seconds: float = 1.0
    """Longest an idle slot waits for an item before looking at the stop flag again."""
    worker_id: str = dataclasses.field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}"
    )
    """Recorded on each lease, to tell which pod holds an item."""

    def __post_init__(self) -> None:
        keys.pool_name(self.pool)
        if self.concurrency < 1:
            raise ValueError(f"concurrency: must be >= 1, got {self.concurrency}")
        if self.lease_seconds <= 0 or self.poll_seconds <= 0:
            raise ValueError("lease_seconds and poll_seconds: must be > 0")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {self.max_attempts}")
        if self.grace_seconds < 0:
            raise ValueError(f"grace_seconds: must be >= 0, got {self.grace_seconds}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: must be 0..65535, got {self.port}")
        unknown = [name for name in self.providers if name not in registry.NAMES]
        if not self.providers or unknown or len(set(self.providers)) != len(self.providers):
            raise base.ConfigurationError(
                f"providers: must be distinct names among {', '.join(registry.NAMES)}, "
                f"got {', '.join(self.providers) or 'none'}"
            )


async def run(*, settings: WorkerSettings, stop: asyncio.Event) -> None:
    """Work until `stop` is set, then finish or hand back the items in flight and return.

    Raises ConfigurationError, before any item is leased, when a provider cannot be built
    (a missing API key).
    """
    providers = await _build_providers(settings=settings)
    client = redisconn.connect(settings.redis, credentials=settings.redis_credentials)
    try:
        # A connection per slot: a slot never waits for another's upload to finish.
        async with stores.open_store(
            config=settings.store, connections=settings.concurrency
        ) as store:
            await _work(
                settings=settings, client=client, store=store, providers=providers, stop=stop
            )
    finally:
        await client.aclose()
        await chain.ProviderChain(providers=list(providers.values())).aclose()
    logger.info("worker %s: stopped", settings.worker_id)


async def _work(
    *,
    settings: WorkerSettings,
    client: redisconn.Client,
    store: store_base.Store,
    stop: asyncio.Event,
    providers: dict[str, base.Provider],
) -> None:
    queue = core.Queue(
        redis=client,
        pool=settings.pool,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
    )
    runner = items.ItemRunner(
        queue=queue,
        providers=providers,
        store=store,
        region=settings.region,
        health=storehealth.Reporter(redis=client, pool=settings.pool),
    )
    worker = Worker(queue=queue, runner=runner, client=client, settings=settings)
    instrument.started(pool=settings.pool, region=settings.region, providers=settings.providers)
    async with health.serving(
        probes=worker, host=settings.host, port=settings.port, registry=metrics.REGISTRY
    ):
        logger.info(
            "worker %s: region %s, pool %s, %d slots, providers %s, store %s",
            settings.worker_id,
            settings.region,
            settings.pool,
            settings.concurrency,
            ", ".join(settings.providers),
            store.name,
        )
        await worker.run(stop=stop)


async def _build_providers(*, settings: WorkerSettings) -> dict[str, base.Provider]:
    built: dict[str, base.Provider] = {}
    try:
        for name in settings.providers:
            built[name] = registry.build(name=name, settings=settings.provider_settings)
    except base.ConfigurationError:
        if built:
            await chain.ProviderChain(providers=list(built.values())).aclose()
        raise
    return built


class Worker:
    """The slots of one worker process, and what its probes report."""

    def __init__(
        self,
        *,
        queue: core.Queue,
        runner: items.ItemRunner,
        client: redisconn.Client,
        settings: WorkerSettings,
    ) -> None:
        self._queue = queue
        self._runner = runner
        self._client = client
        self._settings = settings
        self._slots: list[asyncio.Task[None]] = []
        self._stopping = False

    def alive(self) -> bool:
        """True while every slot runs (or the worker is stopping on purpose)."""
        return self._stopping or all(not slot.done() for slot in self._slots)

    async def unready_reason(self) -> str | None:
        """None when Redis answers PING and the worker is not stopping, else why not."""
        if self._stopping:
            return "stopping"
        try:
            async with asyncio.timeout(PING_SECONDS):
                await self._client.ping()
        except (RedisError, TimeoutError) as error:
            return f"redis unreachable ({type(error).__name__})"
        return None

    async def run(self, *, stop: asyncio.Event) -> None:
        """Run the slots until `stop`; then drain them as the module docstring says."""
        self._slots = [
            asyncio.create_task(self._slot(stop=stop, index=index), name=f"slot-{index}")
            for index in range(self._settings.concurrency)
        ]
        try:
            await stop.wait()
            self._stopping = True
            grace = self._settings.grace_seconds
            logger.info("stopping: items in flight get up to %g s to finish", grace)
            _, pending = await asyncio.wait(self._slots, timeout=grace)
            if pending:
                logger.warning("handing back the items of %d slot(s)", len(pending))
                self._runner.abandon.set()
                await asyncio.wait(pending, timeout=HANDBACK_SECONDS)
        finally:
            for slot in self._slots:
                slot.cancel()
            await asyncio.gather(*self._slots, return_exceptions=True)

    async def _slot(self, *, stop: asyncio.Event, index: int) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self._take_one(stop=stop)
                failures = 0
            except RedisError as error:
                delay = min(_BACKOFF_MAX_SECONDS, _BACKOFF_FIRST_SECONDS * 2**failures)
                failures += 1
                logger.warning("slot %d: redis error (%s); retrying in %.1f s", index, error, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
            except Exception:
                # A bug in the loop itself: the slot ends, /healthz turns 503 and the
                # kubelet restarts the worker; its leases come back when they expire.
                logger.exception("slot %d: stopped by an unexpected error", index)
                raise

    async def _take_one(self, *, stop: asyncio.Event) -> None:
        lease = await self._queue.lease(
            worker_id=self._settings.worker_id, wait_seconds=self._settings.poll_seconds
        )
        if lease is None:
            return
        if stop.is_set():
            # Stop came while this lease was on its way: nothing new is started.
            await self._queue.release(lease=lease)
            return
        correlation = lease.payload.get("correlationId")
        with logs.bound(
            tenant=lease.tenant,
            batch=lease.batch_uid,
            region=self._settings.region,
            correlation_id=correlation if isinstance(correlation, str) else None,
        ):
            instrument.leased(lease=lease, region=self._settings.region)
            phase = await self._runner.run(lease=lease)
            instrument.delivered(lease=lease, region=self._settings.region, phase=phase)
