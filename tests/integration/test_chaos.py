"""The chaos suite: one batch per case through the real operator, real worker processes and
real Redis servers while something breaks, each ending with the batch Succeeded, every
item's image in the store exactly once, no item generated twice and the status counts
exact. `make test-chaos` runs the full form (100 items, the outages the issue names);
`make test` the short form (chaosworld.Scale). Figures go to test-artifacts/chaos-results.jsonl
for the README's table."""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import json
import pathlib
import signal
import time
from collections.abc import Iterator
from typing import Any

import lightkube
import pytest
import redis
from lightkube.resources import core_v1

from imagegen import resources
from imagegen.api import meta
from imagegen.gateway.webhooks import keys as webhookkeys
from imagegen.gateway.webhooks import signing
from imagegen.localcluster import operatorsetup, rediscluster
from imagegen.localcluster import redis as localredis
from imagegen.queue import keys
from tests import builders
from tests.integration import (
    chaosworld,
    conftest,
    faultylink,
    gatewayproc,
    operatorproc,
    tenantworld,
    waiting,
    webhookreceiver,
    workerproc,
)
from tests.integration.chaosworld import AOF, CLUSTER, SCALE, VOLATILE

pytestmark = pytest.mark.chaos

ITEM_SECONDS = 1.0
"""The local provider's simulated cost per image: long enough that a batch runs for tens
of seconds, so the fault lands mid-batch."""
FINISH_SECONDS = 240.0
ENDED = ("Succeeded", "PartiallySucceeded", "Failed")


@pytest.fixture(scope="module")
def backends(
    redis_cluster: rediscluster.LocalRedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[chaosworld.Backends]:
    """The chaos regions' Redis servers, the link to one, and their store folders."""
    workdir = tmp_path_factory.mktemp("chaos")
    aof = chaosworld.start_aof_redis(workdir / "redis-aof")
    volatile = localredis.start(workdir=workdir / "redis-volatile")
    link = faultylink.FaultyLink(target_port=volatile.port)
    link.start()
    try:
        yield chaosworld.Backends(
            aof=aof, volatile=volatile, link=link, cluster_url=redis_cluster.url,
            stores={name: workdir / "stores" / name for name in chaosworld.HOSTS},
        )  # fmt: skip
    finally:
        link.stop()
        aof.stop()
        volatile.stop()


@pytest.fixture(scope="module")
def chaos_operator(
    running_operator: operatorproc.OperatorProcess,
    operator_setup: operatorsetup.OperatorSetup,
    backends: chaosworld.Backends,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[operatorproc.OperatorProcess]:
    """The suite's operator, in place of the session's for the module (two operators would
    both handle every batch); the session's runs again afterwards."""
    workdir = tmp_path_factory.mktemp("chaos-operator")
    setup = chaosworld.write_operator_config(
        setup=operator_setup, backends=backends, workdir=workdir
    )
    running_operator.stop()
    operator = operatorproc.OperatorProcess(setup=setup, log_path=workdir / "operator.log")
    try:
        operator.start()
        yield operator
    finally:
        operator.stop()
        running_operator.start()


@dataclasses.dataclass(kw_only=True)
class Run:
    """One case's tenant, batch, workers and samples."""

    world: tenantworld.World
    backends: chaosworld.Backends
    operator: operatorproc.OperatorProcess
    workdir: pathlib.Path
    world_kubeconfig: pathlib.Path
    tenant: str = ""
    name: str = ""
    uid: str = ""
    pools: dict[str, workerproc.Workers] = dataclasses.field(default_factory=dict)
    sampler: chaosworld.Sampler | None = None

    @property
    def namespace(self) -> str:
        return f"tenant-{self.tenant}"

    def new_tenant(self, *regions: str) -> None:
        self.tenant = tenantworld.unique_name("chaos")
        self.world.create(tenantworld.new_tenant(self.tenant, *regions).obj())
        self.world.wait_reconciled(self.tenant, timeout=90)

    def workers(self, region: str, count: int, *args: str) -> workerproc.Workers:
        """`count` more workers of the tenant's pool in `region` (started, ready)."""
        pool = self.pools.get(region)
        if pool is None:
            pool = workerproc.Workers(
                redis_url=self.backends.worker_urls()[region],
                storage=self.backends.stores[region],
                logs=self.workdir / "logs" / region,
                tenant=self.tenant,
                region=region,
            )
            self.pools[region] = pool
        for _ in range(count):
            asyncio.run(pool.start(*worker_args(), *args))
        return pool

    def submit(self, items: int = SCALE.items, webhook: str | None = None) -> None:
        """Create the batch, and start sampling it."""
        self.name = tenantworld.unique_name("batch")
        batch = (
            builders.make_batch(self.name, tenant=self.tenant).namespace(self.namespace)
            .items(items, size="32x32")
        )  # fmt: skip
        if webhook is not None:
            batch = batch.webhook(webhook, "queued", "running", "progress", "succeeded")
        self.uid = self.world.create(batch.obj())["metadata"]["uid"]
        self.sampler = chaosworld.Sampler(
            kubeconfig=self.world_kubeconfig,
            name=self.name,
            namespace=self.namespace,
            image_dirs=[self.image_dir(region) for region in chaosworld.HOSTS],
        ).__enter__()

    def image_dir(self, region: str) -> pathlib.Path:
        return self.backends.stores[region] / self.tenant / self.uid

    def status(self) -> dict[str, Any]:
        found = self.world.kube.get(resources.ImageBatch, self.name, namespace=self.namespace)
        status: dict[str, Any] = found.to_dict().get("status") or {}
        return status

    def stored(self) -> int:
        return sum(chaosworld.stored_images(self.image_dir(r)) for r in chaosworld.HOSTS)

    def wait_stored(self, count: int, *, timeout: float = 120) -> None:
        waiting.until(
            lambda: self.stored() >= count, timeout=timeout, what=f"{count} images stored",
            explain=self.explain,
        )  # fmt: skip

    def wait_status(self, predicate: Any, *, what: str, timeout: float = FINISH_SECONDS) -> Any:
        return waiting.until(
            lambda: (s := self.status()) and predicate(s) and s,
            timeout=timeout, what=what, explain=self.explain,
        )  # fmt: skip

    def wait_succeeded(self) -> dict[str, Any]:
        """The batch's status once it has ended, and once the sampler has seen it end too
        (its figures are read from the samples)."""
        done: dict[str, Any] = self.wait_status(
            lambda s: s.get("phase") in ENDED, what=f"{self.name} finished"
        )
        assert self.sampler is not None
        sampler = self.sampler
        waiting.until(
            lambda: (last := sampler.latest()) is not None and last.phase in ENDED,
            timeout=30, what="the sampler saw the batch end",
        )  # fmt: skip
        return done

    def explain(self) -> str:
        status = self.status() if self.name else {}
        return (
            f"phase {status.get('phase')} counts {status.get('counts')} region "
            f"{status.get('region')}; stored {self.stored() if self.uid else 0}; operator log: "
            f"{self.operator.log()[-2500:]}"
        )

    def generations(self) -> chaosworld.Generations:
        return chaosworld.count_generations(
            logs=[pool.logs for pool in self.pools.values()], uid=self.uid
        )

    def webhook_secret(self) -> str:
        """The tenant's webhook signing secret, from the Secret the operator wrote."""
        secret = self.world.kube.get(
            core_v1.Secret, f"{self.tenant}-api-key", namespace=self.namespace
        )
        assert secret.data is not None
        return base64.b64decode(secret.data[meta.WEBHOOK_SECRET_KEY]).decode()

    def events(self) -> list[core_v1.Event]:
        return [
            event
            for event in self.world.kube.list(core_v1.Event, namespace=self.namespace)
            if event.involvedObject.name == self.name
        ]

    def check(
        self, done: dict[str, Any], *, total: int = SCALE.items, remade_in_flight: int = 0
    ) -> chaosworld.Generations:
        """What every case ends with: Succeeded, counts exact, each image stored once in
        one store, no item generated twice, and status that never went backwards.
        `remade_in_flight`: how many items may have been made twice because the queue
        forgot them while they were being made (a Redis without persistence restarted):
        each such item's first image was dropped unstored, never stored twice."""
        assert done["phase"] == "Succeeded", self.explain()
        assert done["counts"] == chaosworld.all_succeeded(total)
        assert done["progress"] == f"{total}/{total}"
        ids = [item["id"] for item in done["items"]]
        assert sorted(ids) == sorted(f"i{n}" for n in range(total))
        assert all(item["state"] == "Succeeded" and item.get("uri") for item in done["items"])
        per_region = {
            region: {path.stem for path in self.image_dir(region).glob("*.png")}
            for region in chaosworld.HOSTS
        }
        assert sum(len(found) for found in per_region.values()) == total, per_region
        assert set().union(*per_region.values()) == set(ids)
        made = self.generations()
        assert made.items() == set(ids)
        twice = made.duplicates()
        assert len(twice) <= remade_in_flight, f"generated twice: {twice}"
        assert all(made.dropped[item] >= 1 for item in twice), made
        assert made.stored == collections.Counter(ids), f"stored twice: {made.stored}"
        assert self.sampler is not None
        seen = [s.succeeded for s in self.sampler.samples if s.succeeded >= 0]
        assert seen == sorted(seen), f"status went backwards: {seen}"
        assert "Traceback" not in self.operator.log(), self.operator.log()[-4000:]
        return made

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.__exit__()
        for pool in self.pools.values():
            pool.stop_all()
        if self.tenant:
            self.world.kube.delete(resources.Tenant, self.tenant)
            waiting.until(lambda: self._tenant_gone(), timeout=90, what="the Tenant deleted")

    def _tenant_gone(self) -> bool:
        try:
            self.world.kube.get(resources.Tenant, self.tenant)
        except lightkube.ApiError as error:
            return error.status.code == 404
        return False


SLOTS = 2
"""Items each chaos worker makes at once."""


def worker_args() -> tuple[str, ...]:
    """Every chaos worker: two slots, short leases (a killed worker's items come back in
    seconds), and more attempts than the default three, since kill -9 every 3 s may hit
    the same item more than twice and the case is about losing nothing, not about the
    bound on attempts."""
    return (
        "--concurrency", str(SLOTS), "--lease-seconds", "5", "--max-attempts", "10",
        "--simulated-cost-seconds", str(ITEM_SECONDS),
    )  # fmt: skip


@pytest.fixture
def run(
    kube: lightkube.Client,
    local_stack: Any,
    backends: chaosworld.Backends,
    chaos_operator: operatorproc.OperatorProcess,
    tmp_path: pathlib.Path,
) -> Iterator[Run]:
    """A case: its Tenant is deleted after it, and its workers stopped."""
    made = Run(
        world=tenantworld.World(kube=kube, regions=local_stack.regions),
        backends=backends,
        operator=chaos_operator,
        workdir=tmp_path,
        world_kubeconfig=local_stack.management.kubeconfig,
    )
    try:
        yield made
    finally:
        made.close()


def test_kill_9_of_the_primary_holding_the_pools_slot_loses_nothing(
    run: Run, redis_cluster: rediscluster.LocalRedisCluster
) -> None:
    run.new_tenant(CLUSTER)
    run.workers(CLUSTER, 2)
    run.submit()
    run.wait_stored(SCALE.items // 4)
    doomed = redis_cluster.primary_of(keys.Keyspace(pool=keys.dedicated(tenant=run.tenant)).seq)
    killed_at = time.monotonic()
    doomed.kill()
    try:
        done = run.wait_succeeded()
    finally:
        doomed.restart()
        redis_cluster.wait_healthy()
    seq = keys.Keyspace(pool=keys.dedicated(tenant=run.tenant)).seq
    assert redis_cluster.primary_of(seq).port != doomed.port, "no replica was promoted"
    made = run.check(done)
    assert run.sampler is not None
    chaosworld.record(
        "cluster-primary-kill",
        items=SCALE.items,
        lost=0,
        duplicates=len(made.duplicates()),
        killed_generations=sum(made.killed.values()),
        recovery_seconds=run.sampler.status_after(killed_at),
        to_succeeded_seconds=run.sampler.succeeded_after(killed_at),
    )


def test_kill_9_of_a_worker_every_3_s_for_the_whole_batch_loses_nothing(run: Run) -> None:
    run.new_tenant(AOF)
    pool = run.workers(AOF, 2)
    run.submit()
    run.wait_stored(1)
    kills = 0
    while run.status().get("phase") not in ENDED:
        alive = [worker for worker in pool.started if worker.child.running()]
        alive[0].signal(signal.SIGKILL)
        kills += 1
        killed_at = time.monotonic()
        # As the Deployment would: a new pod in the killed one's place.
        run.workers(AOF, 1)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - killed_at)))
        assert kills < 200, run.explain()
    done = run.wait_succeeded()
    made = run.check(done)
    assert kills >= 2, "the batch ended before the second kill"
    assert run.sampler is not None
    chaosworld.record(
        "worker-kill-every-3s",
        items=SCALE.items,
        kills=kills,
        lost=0,
        duplicates=len(made.duplicates()),
        killed_generations=sum(made.killed.values()),
        recovery_seconds=run.sampler.longest_stall(),
    )


def test_kill_9_of_the_operator_twice_mid_batch_loses_nothing(run: Run) -> None:
    run.new_tenant(AOF)
    run.workers(AOF, 1)
    run.submit()
    restarts: list[float] = []
    for kill in (1, 2):
        run.wait_stored(kill * SCALE.items // 3)
        run.operator.stop(sig=signal.SIGKILL)
        time.sleep(SCALE.operator_down_seconds)  # the outage itself, not a wait for a state
        restarts.append(time.monotonic())
        run.operator.start()
    done = run.wait_succeeded()
    made = run.check(done)
    assert run.sampler is not None
    recoveries = [run.sampler.status_after(at) for at in restarts]
    chaosworld.record(
        "operator-kill-twice",
        items=SCALE.items,
        lost=0,
        duplicates=len(made.duplicates()),
        recovery_seconds=max(r for r in recoveries if r is not None),
        recoveries=recoveries,
    )


def restart_redis_mid_batch(
    run: Run, region: str, server: localredis.LocalRedis
) -> tuple[dict[str, Any], float]:
    """Run the batch in `region` and kill -9 its Redis a third of the way, restarting it
    at once; (the batch's last status, when the Redis answered again)."""
    run.new_tenant(region)
    run.workers(region, 2)
    run.submit()
    run.wait_stored(SCALE.items // 3)
    back_at = chaosworld.crash_and_restart(server)
    return run.wait_succeeded(), back_at


def record_restart(case: str, run: Run, made: chaosworld.Generations, back_at: float) -> None:
    assert run.sampler is not None
    chaosworld.record(
        case,
        items=SCALE.items,
        lost=0,
        duplicates=len(made.duplicates()),
        recovery_seconds=run.sampler.status_after(back_at),
        to_succeeded_seconds=run.sampler.succeeded_after(back_at),
    )


def test_a_redis_restart_with_its_aof_loses_nothing(run: Run) -> None:
    done, back_at = restart_redis_mid_batch(run, AOF, run.backends.aof)
    made = run.check(done)
    assert "QueueDataLost" not in {event.reason for event in run.events()}
    record_restart("redis-restart-aof", run, made, back_at)


def test_a_redis_restart_without_persistence_is_detected_and_the_batch_finishes(
    run: Run,
) -> None:
    done, back_at = restart_redis_mid_batch(run, VOLATILE, run.backends.volatile)
    # The restarted Redis no longer knows who holds what: the images being made at the
    # crash are dropped by their workers and made again, at most one per slot.
    made = run.check(done, remade_in_flight=SLOTS * 2)
    lost = [event for event in run.events() if event.reason == "QueueDataLost"]
    assert lost, "the data loss was not detected"
    assert lost[0].type == "Warning"
    record_restart("redis-restart-no-persistence", run, made, back_at)


def test_the_operator_cut_off_from_a_region_fails_over_and_back_making_nothing_twice(
    run: Run,
) -> None:
    run.new_tenant(VOLATILE, AOF)
    # The old region goes on with the batch while only the operator has lost it; one
    # slot there, four in the region it fails over to.
    run.workers(VOLATILE, 1, "--concurrency", "1")
    run.workers(AOF, 2)
    run.submit()
    run.wait_stored(SCALE.items // 5)
    assert run.status()["region"] == VOLATILE
    # Only the operator's connections go through the link: refused and reset, as from a
    # closed port; the region's workers reach its Redis directly.
    run.backends.link.refuse(True)
    run.backends.link.cut()
    cut_at, before = time.monotonic(), chaosworld.stored_images(run.image_dir(VOLATILE))
    try:
        moved = run.wait_status(lambda s: s.get("region") == AOF, what="failed over", timeout=120)
    finally:
        run.backends.link.refuse(False)
    restored_at = time.monotonic()
    done = run.wait_succeeded()
    made = run.check(done)

    assert moved["enqueuedRegions"] == [VOLATILE, AOF]
    old_region = chaosworld.stored_images(run.image_dir(VOLATILE))
    new_region = chaosworld.stored_images(run.image_dir(AOF))
    assert old_region > before, "the old region made nothing while cut off"
    assert new_region > 0, "the region failed over to made nothing"
    reasons = [event.reason for event in run.events()]
    assert reasons.count("FailedOver") == 1
    assert run.sampler is not None
    chaosworld.record(
        "operator-cut-off",
        items=SCALE.items,
        lost=0,
        duplicates=len(made.duplicates()),
        cut_seconds=restored_at - cut_at,
        made_in_old_region=old_region,
        made_in_new_region=new_region,
        recovery_seconds=run.sampler.status_after(restored_at),
        to_succeeded_seconds=run.sampler.succeeded_after(restored_at),
    )


LIFECYCLE = {"batch.queued": 0, "batch.started": 1, "batch.completed": 100}
"""Where each webhook event comes in a batch's life (batch.progress: 1 + its tenth)."""


def lifecycle_rank(body: dict[str, Any]) -> int:
    if body["type"] == "batch.progress":
        return 1 + int(body["data"]["percent"]) // 10
    return LIFECYCLE[body["type"]]


def test_a_webhook_receiver_down_then_back_gets_every_event_once_in_order(
    run: Run, running_gateway: gatewayproc.GatewayProcess, redis_server: localredis.LocalRedis
) -> None:
    run.new_tenant(AOF)
    run.workers(AOF, 2)
    threaded = webhookreceiver.ThreadedReceiver(host=conftest.GATEWAY_WEBHOOK_HOST)
    with threaded as receiver:
        run.submit(webhook=receiver.url)
        waiting.until(lambda: receiver.ok(), timeout=60, what="the first event delivered")
        threaded.take_down()
        down_at = time.monotonic()
        run.wait_succeeded()
        # The outage goes on for its length whatever the batch does meanwhile.
        time.sleep(max(0.0, SCALE.webhook_down_seconds - (time.monotonic() - down_at)))
        threaded.bring_back()
        back_at = time.monotonic()
        emitted = webhook_events_emitted(redis_server, run.uid)
        delivered = waiting.until(
            lambda: len(ids := delivered_ids(receiver)) >= emitted and ids,
            timeout=300, interval=0.5, what=f"{emitted} events delivered",
        )  # fmt: skip
        recovery = time.monotonic() - back_at
        time.sleep(2)  # anything sent twice would arrive now; nothing should
        deliveries = receiver.ok()

    made = run.check(run.status())
    ids = [lowered(r.headers)["webhook-id"] for r in deliveries]
    assert len(ids) == len(set(ids)) == emitted, f"{len(ids)} deliveries of {emitted} events"
    assert set(ids) == set(delivered)
    secret = run.webhook_secret()
    for delivery in deliveries:
        signing.verify(
            secret=secret, headers=delivery.headers, body=delivery.body, now=int(delivery.at)
        )
    bodies = [json.loads(delivery.body) for delivery in deliveries]
    assert all(body["data"]["uid"] == run.uid for body in bodies)
    ranks = [lifecycle_rank(body) for body in sorted(bodies, key=lambda b: b["timestamp"])]
    assert ranks == sorted(ranks), "the events' timestamps are out of the batch's order"
    assert ranks[0] == 0
    assert ranks[-1] == 100
    assert len(set(ranks)) == len(ranks)
    arrival = [lifecycle_rank(body) for body in bodies]
    chaosworld.record(
        "webhook-receiver-down",
        items=SCALE.items,
        lost=0,
        duplicates=len(made.duplicates()),
        down_seconds=back_at - down_at,
        events=emitted,
        attempts=delivery_attempts(redis_server, ids),
        arrived_in_order=arrival == sorted(arrival),
        recovery_seconds=recovery,
    )


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def delivered_ids(receiver: webhookreceiver.Receiver) -> set[str]:
    return {lowered(r.headers)["webhook-id"] for r in receiver.ok()}


def webhook_events_emitted(server: localredis.LocalRedis, uid: str) -> int:
    """How many events the gateway's outbox appended for the batch (its once-only marks)."""
    marker = webhookkeys.emitted(batch_uid=uid, event_type="", step=0)
    pattern = marker.removesuffix("::0") + ":*"
    client = redis.Redis(host="127.0.0.1", port=server.port, db=conftest.GATEWAY_REDIS_DB)
    try:
        return sum(1 for _ in client.scan_iter(match=pattern))
    finally:
        client.close()


def delivery_attempts(server: localredis.LocalRedis, msg_ids: list[str]) -> int:
    """Attempts the gateway made to deliver these events, refused ones included (its
    delivery records; a refused connection never reaches the receiver)."""
    client = redis.Redis(host="127.0.0.1", port=server.port, db=conftest.GATEWAY_REDIS_DB)
    try:
        return sum(
            int(client.hget(webhookkeys.delivery(msg_id), "attempts") or 0) for msg_id in msg_ids
        )
    finally:
        client.close()
