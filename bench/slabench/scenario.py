"""One scenario, from fresh Tenants in an empty region to their removal.

1. Create the ten standard Tenants (and the premium one), read their API keys, start the
   load model; the flood through the gateway begins.
2. Warm up: wait until the shared pool runs its maxReplicas (HPA, Running pods and worker
   processes alike) and the premium pool its minReplicas, and has done so for
   STEADY_SECONDS, so that every scenario is measured from the same steady state.
3. The measurement window (--minutes): the premium tenant submits a batch every 30 s;
   the standard tenants' images are counted from its first sample to its last.
4. Drain: the flood goes on until every premium batch has finished, or its deadline
   and DRAIN_GRACE_SECONDS have passed (it then counts as unfinished, a lower bound).
5. Count the pods the scheduler preempted (its `Preempted` Events), remove everything and
   wait until the region has no worker pod left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import sys
import time
import uuid
from typing import Any

import httpx2
import lightkube
from lightkube.resources import autoscaling_v2, core_v1

from imagegen import resources
from imagegen.kube import clients, objects, reflector, watching
from imagegen.localcluster import process
from imagegen.queue import keys
from imagegen.render import pool as render_pool
from slabench import figures, stack, tenants, traffic, workers

STANDARD_TENANTS = 10
PREMIUM_BATCH = 100
PREMIUM_EVERY_SECONDS = 30
SAMPLE_SECONDS = 5.0
PROGRESS_EVERY_SAMPLES = 12
"""A progress line a minute: a 15-minute run is long to watch in silence."""
STEADY_SECONDS = 30.0
WARMUP_LIMIT_SECONDS = 480.0
DRAIN_GRACE_SECONDS = 30.0
_WATCH_SECONDS = 60


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """What every scenario of one run shares."""

    minutes: float
    image_seconds: float
    concurrency: int
    standard_batch: int
    standard_active: int
    premium_max: int
    deadline_seconds: int
    capacity: stack.Capacity


def run(*, scenario: str, world: stack.Stack, settings: Settings) -> figures.Recording:
    """Run `baseline` (no premium tenant), `dedicated` (premium on its dedicated pool with
    the premium profile, tier priority) or `shared` (premium on the shared pool, tier
    standard); what it recorded."""
    suffix = uuid.uuid4().hex[:4]
    premium = None if scenario == "baseline" else f"premium-{suffix}"
    dedicated = scenario == "dedicated"
    standard = [f"standard-{index}-{suffix}" for index in range(STANDARD_TENANTS)]
    manifests = [
        tenants.manifest(
            name,
            tier="standard",
            dedicated=False,
            premium_max=settings.premium_max,
            deadline_seconds=settings.deadline_seconds,
        )
        for name in standard
    ]
    if premium is not None:
        manifests.append(
            tenants.manifest(
                premium,
                tier="priority" if dedicated else "standard",
                dedicated=dedicated,
                premium_max=settings.premium_max,
                deadline_seconds=settings.deadline_seconds,
            )
        )
    with (
        clients.sync_client(kubeconfig=world.admin_kubeconfig) as admin,
        clients.sync_client(kubeconfig=world.region_kubeconfig) as region,
    ):
        api_keys = tenants.create_ready(admin, manifests)
        began = time.time()
        model = _start_load_model(world=world, premium=premium if dedicated else None)
        try:
            recording = asyncio.run(
                _Drive(
                    scenario=scenario,
                    world=world,
                    settings=settings,
                    standard=standard,
                    premium=premium,
                    dedicated=dedicated,
                    api_keys=api_keys,
                ).run()
            )
        finally:
            model.stop()
        recording.preempted = preemptions(
            region, since=began, premium=premium if dedicated else None
        )
        tenants.remove(admin, region, [obj["metadata"]["name"] for obj in manifests])
    return recording


def preemptions(region: lightkube.Client, *, since: float, premium: str | None) -> dict[str, int]:
    """Worker pods the scheduler preempted since `since` (Unix seconds), from its
    `Preempted` Events on the victims: standard (shared pool) and premium ones."""
    victims: dict[str, set[str]] = {"standard": set(), "premium": set()}
    for event in region.list(core_v1.Event, namespace=stack.WORKERS):
        if event.reason != "Preempted" or event.involvedObject.kind != "Pod":
            continue
        when = (
            event.eventTime
            or event.firstTimestamp
            or (event.metadata.creationTimestamp if event.metadata else None)
        )
        if when is None or when.timestamp() < since:
            continue
        name = event.involvedObject.name or ""
        if name.startswith(f"{render_pool.SHARED_POOL}-"):
            victims["standard"].add(name)
        elif premium is not None and name.startswith(f"{render_pool.DEDICATED_PREFIX}{premium}-"):
            victims["premium"].add(name)
    return {kind: len(names) for kind, names in victims.items()}


def _start_load_model(*, world: stack.Stack, premium: str | None) -> process.ManagedProcess:
    """SIMULATION: each pool's queue sets its pods' CPU, which the real HPA scales on."""
    targets = [f"{keys.SHARED}={render_pool.SHARED_POOL}"]
    if premium is not None:
        targets.append(f"{keys.dedicated(tenant=premium)}={render_pool.DEDICATED_PREFIX}{premium}")
    argv = [sys.executable, "-m", "imagegen.sim", "--kubeconfig", str(world.region_kubeconfig)]
    argv += ["--redis-url", world.region_redis_url, "--noise", "0.05"]
    argv += [arg for target in targets for arg in ("--target", target)]
    log = world.workdir / f"load-model-{uuid.uuid4().hex[:4]}.log"
    return process.spawn(name="load-model", argv=argv, log_path=log)


class _Drive:
    """The asynchronous part of a scenario: the watches, the flood, the followers, the
    samples, and the phases of step 2 to 4."""

    def __init__(
        self,
        *,
        scenario: str,
        world: stack.Stack,
        settings: Settings,
        standard: list[str],
        premium: str | None,
        dedicated: bool,
        api_keys: dict[str, str],
    ) -> None:
        self.scenario = scenario
        self.world = world
        self.settings = settings
        self.standard = standard
        self.premium = premium
        self.dedicated = dedicated
        self.api_keys = api_keys
        self.batches = traffic.BatchBook()
        self.pods = workers.PodBook()
        # The followers serve a dedicated pool only where there is one.
        self.pools = workers.selectors(premium=premium if dedicated else None)
        self.samples: list[figures.Sample] = []
        self._began = 0.0

    async def run(self) -> figures.Recording:
        admin = clients.async_client(kubeconfig=self.world.admin_kubeconfig)
        region = clients.async_client(kubeconfig=self.world.region_kubeconfig)
        followers = workers.Followers(
            book=self.pods,
            pools=self.pools,
            redis_url=self.world.region_redis_url,
            workdir=self.world.workdir,
            concurrency=self.settings.concurrency,
            image_seconds=self.settings.image_seconds,
        )
        watches = [
            reflector.Reflector(
                client=admin,
                resource=resources.ImageBatch,
                what="batches",
                sink=self.batches,
                options=watching.Options(server_timeout_seconds=_WATCH_SECONDS),
                namespace=lightkube.ALL_NS,
            ),
            reflector.Reflector(
                client=region,
                resource=core_v1.Pod,
                what="worker pods",
                sink=self.pods,
                options=watching.Options(server_timeout_seconds=_WATCH_SECONDS),
                namespace=stack.WORKERS,
            ),
        ]
        try:
            async with httpx2.AsyncClient(
                base_url=self.world.gateway_url, timeout=30, trust_env=False
            ) as http:
                submitter = traffic.Submitter(http=http, keys=self.api_keys)
                return await self._phases(
                    region=region, watches=watches, followers=followers, submitter=submitter
                )
        finally:
            await followers.stop_all()
            await admin.close()
            await region.close()

    async def _phases(
        self,
        *,
        region: lightkube.AsyncClient,
        watches: list[reflector.Reflector],
        followers: workers.Followers,
        submitter: traffic.Submitter,
    ) -> figures.Recording:
        background: list[asyncio.Task[Any]] = []
        async with asyncio.TaskGroup() as group:
            background += [group.create_task(watch.run()) for watch in watches]
            for watch in watches:
                await asyncio.wait_for(watch.synced.wait(), timeout=60)
            self._began = asyncio.get_running_loop().time()
            background.append(group.create_task(followers.run()))
            background.append(
                group.create_task(
                    traffic.flood(
                        submitter=submitter,
                        book=self.batches,
                        tenants=self.standard,
                        active=self.settings.standard_active,
                        images=self.settings.standard_batch,
                    )
                )
            )
            background.append(
                group.create_task(self._sample_forever(region=region, followers=followers))
            )
            warmup = await self._warm_up()
            window_start = (await self._sample(region=region, followers=followers)).at
            self._say(f"steady after {warmup:.0f}s; measuring")
            premium_ids = await self._window(submitter=submitter)
            window_end = (await self._sample(region=region, followers=followers)).at
            self._say("window closed; waiting for the premium batches" if premium_ids else "done")
            await self._drain(premium_ids)
            waited_until = time.time()
            for task in background:
                task.cancel()
        tenant_names = [*self.standard, *([self.premium] if self.premium else [])]
        return figures.Recording(
            scenario=self.scenario,
            premium=self.premium,
            premium_on_shared=self.premium is not None and not self.dedicated,
            standard=self.standard,
            warmup_seconds=warmup,
            window_start=window_start,
            window_end=window_end,
            waited_until=waited_until,
            samples=sorted(self.samples, key=lambda s: s.at),
            batches=self.batches.records(tenant_names),
            preempted={},
            submissions=dict(submitter.counts),
        )

    async def _warm_up(self) -> float:
        """Seconds until the pools were steady for STEADY_SECONDS; RuntimeError past the limit."""
        loop = asyncio.get_running_loop()
        steady_since: float | None = None
        while (now := loop.time()) - self._began < WARMUP_LIMIT_SECONDS:
            latest = self.samples[-1] if self.samples else None
            if latest is not None and self._steady(latest):
                steady_since = steady_since or now
                if now - steady_since >= STEADY_SECONDS:
                    return now - self._began
            else:
                steady_since = None
            await asyncio.sleep(1.0)
        raise RuntimeError(
            f"{self.scenario}: pools not steady within {WARMUP_LIMIT_SECONDS:.0f}s; last sample"
            f" {self.samples[-1] if self.samples else None}"
        )

    def _steady(self, sample: figures.Sample) -> bool:
        shared = sample.pools.get(figures.SHARED)
        full = self.settings.capacity.general_workers
        if shared is None or not shared.hpa_replicas == shared.running == shared.workers == full:
            return False
        if self.dedicated and self.premium is not None:
            premium = sample.pools.get(self.premium)
            return (
                premium is not None
                and premium.running >= tenants.PREMIUM_MIN_REPLICAS
                and premium.workers == premium.running
            )
        return True

    async def _window(self, *, submitter: traffic.Submitter) -> list[str]:
        """The measurement window; the premium batches submitted in it."""
        loop = asyncio.get_running_loop()
        seconds = self.settings.minutes * 60
        end = loop.time() + seconds
        submitted: list[str] = []
        if self.premium is not None:
            submitted = await traffic.premium_batches(
                submitter=submitter,
                tenant=self.premium,
                count=math.ceil(seconds / PREMIUM_EVERY_SECONDS),
                every_seconds=PREMIUM_EVERY_SECONDS,
                images=PREMIUM_BATCH,
            )
        await asyncio.sleep(max(0.0, end - loop.time()))
        return submitted

    async def _drain(self, premium_ids: list[str]) -> None:
        if not premium_ids:
            return
        last = max(b.created for b in self.batches.records([self.premium or ""]))
        until = last + self.settings.deadline_seconds + DRAIN_GRACE_SECONDS
        await self.batches.wait_finished(premium_ids, until=until)

    async def _sample_forever(
        self, *, region: lightkube.AsyncClient, followers: workers.Followers
    ) -> None:
        for count in itertools.count():
            sample = await self._sample(region=region, followers=followers)
            if count % PROGRESS_EVERY_SAMPLES == 0:
                self._say(_progress(sample, premium=self.premium))
            await asyncio.sleep(SAMPLE_SECONDS)

    def _say(self, text: str) -> None:
        elapsed = asyncio.get_running_loop().time() - self._began
        print(f"  {self.scenario} {elapsed:5.0f}s {text}", flush=True)

    async def _sample(
        self, *, region: lightkube.AsyncClient, followers: workers.Followers
    ) -> figures.Sample:
        pools = {}
        for name, selector in self.pools.items():
            deployment = (
                render_pool.SHARED_POOL
                if name == figures.SHARED
                else f"{render_pool.DEDICATED_PREFIX}{name}"
            )
            hpa = await objects.get_or_none(
                region, autoscaling_v2.HorizontalPodAutoscaler, deployment, namespace=stack.WORKERS
            )
            status = hpa.status if hpa is not None else None
            pods = self.pods.count(selector, node_pool=self.world.premium_nodes)
            pools[name] = figures.PoolSample(
                hpa_replicas=(status.currentReplicas if status else None) or 0,
                hpa_desired=(status.desiredReplicas if status else None) or 0,
                running=pods.running,
                pending=pods.pending,
                workers=followers.count(name),
                outside_node_pool=0 if name == figures.SHARED else pods.outside_node_pool,
            )
        sample = figures.Sample(
            at=round(asyncio.get_running_loop().time() - self._began, 1),
            pools=pools,
            standard_images=self.batches.succeeded(self.standard),
            premium_images=self.batches.succeeded([self.premium] if self.premium else []),
        )
        self.samples.append(sample)
        return sample


def _progress(sample: figures.Sample, *, premium: str | None) -> str:
    """`shared 8/8 (0 pending) | premium 6/6 (2 outside) | images: standard 1234, premium 500`:
    Running pods of the HPA's replicas per pool, then the images made so far."""
    pools = " | ".join(
        f"{'shared' if name == figures.SHARED else 'premium'} {p.running}/{p.hpa_replicas}"
        f" ({p.pending} pending"
        + ("" if name == figures.SHARED else f", {p.outside_node_pool} outside")
        + ")"
        for name, p in sample.pools.items()
    )
    made = f"images: standard {sample.standard_images}"
    if premium is not None:
        made += f", premium {sample.premium_images}"
    return f"{pools} | {made}"
