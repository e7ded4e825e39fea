"""The watch helper against the real apiserver, through a link the tests break: it lists
then hands over each change; a cut connection resumes from the last resourceVersion
without listing again; a silent (half-open) one is replaced once the inactivity timeout
passes; a watch away longer than the apiserver keeps its history gets 410 Gone and lists
again, seeing what was deleted meanwhile; and a quiet watch stays up on bookmarks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import lightkube
import pytest
from lightkube import generic_resource
from lightkube.models import apiextensions_v1 as crd_models
from lightkube.models import meta_v1
from lightkube.resources import apiextensions_v1, core_v1
from lightkube.types import PatchType

from imagegen.kube import clients, watching
from imagegen.localcluster import cluster, install
from tests.integration import faultylink

FAST = watching.Options(
    server_timeout_seconds=60, first_backoff_seconds=0.1, max_backoff_seconds=1.0
)
"""Quick retries, so that the tests wait on the apiserver and not on the backoff."""

MINE = {"imagegen.semantest.io/test": "watching"}
"""The label of this module's ConfigMaps: a namespace also gets the controller-manager's."""
PROBE_GROUP = "watchtest.imagegen.semantest.io"
Probe = generic_resource.create_namespaced_resource(
    group=PROBE_GROUP, version="v1", kind="Probe", plural="probes"
)


class Recorder:
    """A watch read in a task of its own, its events queued for the test."""

    def __init__(self, events: AsyncIterator[watching.Event]) -> None:
        self._queue: asyncio.Queue[watching.Event] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(events))

    async def _read(self, events: AsyncIterator[watching.Event]) -> None:
        async for event in events:
            await self._queue.put(event)

    async def next(self, *, seconds: float = 30.0) -> watching.Event:
        """The next event, waiting a bounded time for it."""
        return await asyncio.wait_for(self._queue.get(), seconds)

    async def changed(self, *, seconds: float = 30.0) -> watching.Changed:
        event = await self.next(seconds=seconds)
        assert isinstance(event, watching.Changed), f"expected a change, got {event}"
        return event

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
def namespace(kube: lightkube.Client) -> Iterator[str]:
    name = f"watching-{uuid.uuid4().hex[:6]}"
    kube.create(core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=name)))
    yield name
    kube.delete(core_v1.Namespace, name)


@pytest.fixture
def linked(
    management: cluster.LocalCluster, tmp_path: pathlib.Path
) -> Iterator[faultylink.LinkedCluster]:
    with faultylink.link_to(management, workdir=tmp_path) as found:
        yield found


@pytest.fixture
async def through_link(linked: faultylink.LinkedCluster) -> AsyncIterator[lightkube.AsyncClient]:
    client = clients.async_client(kubeconfig=linked.kubeconfig)
    yield client
    await client.close()


def config_map(kube: lightkube.Client, namespace: str, name: str) -> str:
    """Create a ConfigMap; its resourceVersion."""
    made = kube.create(
        core_v1.ConfigMap(metadata=meta_v1.ObjectMeta(name=name, namespace=namespace, labels=MINE))
    )
    assert made.metadata is not None
    assert made.metadata.resourceVersion is not None
    return made.metadata.resourceVersion


def names(event: watching.Event) -> list[str]:
    assert isinstance(event, watching.Listed), f"expected a list, got {event}"
    return sorted(obj.metadata.name for obj in event.objects)


async def test_a_watch_lists_then_hands_over_each_change_in_order(
    kube: lightkube.Client, namespace: str, management_async: lightkube.AsyncClient
) -> None:
    config_map(kube, namespace, "before")
    recorder = Recorder(
        watching.watch(
            management_async,
            core_v1.ConfigMap,
            what="test",
            options=FAST,
            namespace=namespace,
            labels=MINE,
        )
    )
    try:
        assert names(await recorder.next()) == ["before"]
        config_map(kube, namespace, "after")
        kube.patch(
            core_v1.ConfigMap,
            "before",
            {"data": {"k": "v"}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
        kube.delete(core_v1.ConfigMap, "after", namespace=namespace)
        seen = [await recorder.changed() for _ in range(3)]
    finally:
        await recorder.stop()
    assert [(e.type, e.object.metadata.name) for e in seen] == [
        ("ADDED", "after"),
        ("MODIFIED", "before"),
        ("DELETED", "after"),
    ]


async def test_a_cut_connection_resumes_from_the_last_version_without_listing_again(
    kube: lightkube.Client,
    namespace: str,
    linked: faultylink.LinkedCluster,
    through_link: lightkube.AsyncClient,
) -> None:
    health = watching.Health()
    recorder = Recorder(
        watching.watch(
            through_link,
            core_v1.ConfigMap,
            what="test",
            options=FAST,
            namespace=namespace,
            labels=MINE,
            health=health,
        )
    )
    try:
        assert names(await recorder.next()) == []
        seen = config_map(kube, namespace, "seen")
        assert (await recorder.changed()).object.metadata.resourceVersion == seen
        before_cut = linked.link.accepted
        linked.link.refuse(True)
        linked.link.cut()
        # Made while the watch cannot reach the apiserver: only a resumed watch (or a new
        # list) can bring it, and it must come as a change, not as a list.
        missed = config_map(kube, namespace, "missed")
        linked.link.refuse(False)
        event = await recorder.changed()
    finally:
        await recorder.stop()
    assert (event.type, event.object.metadata.name) == ("ADDED", "missed")
    assert event.object.metadata.resourceVersion == missed
    assert linked.link.accepted > before_cut, "a new connection brought it"
    assert health.failures == 0, "the resumed watch was accepted"


async def test_a_silent_connection_is_replaced_once_the_inactivity_timeout_passes(
    kube: lightkube.Client,
    namespace: str,
    linked: faultylink.LinkedCluster,
    through_link: lightkube.AsyncClient,
) -> None:
    # Seconds, not the production 70: the test waits on the timeout, not on the minute
    # between the apiserver's bookmarks (the last test shows those keep a watch alive).
    options = watching.Options(
        server_timeout_seconds=60,
        inactivity_seconds=3.0,
        first_backoff_seconds=0.1,
        max_backoff_seconds=1.0,
    )
    recorder = Recorder(
        watching.watch(
            through_link,
            core_v1.ConfigMap,
            what="test",
            options=options,
            namespace=namespace,
            labels=MINE,
        )
    )
    try:
        assert names(await recorder.next()) == []
        config_map(kube, namespace, "first")
        assert (await recorder.changed()).object.metadata.name == "first"
        frozen_at = linked.link.accepted
        # Half-open: the watch's connection stays open and carries nothing any more.
        linked.link.freeze()
        config_map(kube, namespace, "behind-the-freeze")
        event = await recorder.changed(seconds=30)
    finally:
        await recorder.stop()
    assert (event.type, event.object.metadata.name) == ("ADDED", "behind-the-freeze")
    assert linked.link.accepted > frozen_at, "a new connection brought it"


@pytest.fixture
def probes(kube: lightkube.Client, namespace: str) -> Iterator[str]:
    """A CRD of this test's own: its watch cache is fresh and nobody else writes to it, so
    how many writes push an event out of the apiserver's history is known."""
    name = f"probes.{PROBE_GROUP}"
    kube.create(
        apiextensions_v1.CustomResourceDefinition(
            metadata=meta_v1.ObjectMeta(name=name),
            spec=crd_models.CustomResourceDefinitionSpec(
                group=PROBE_GROUP,
                names=crd_models.CustomResourceDefinitionNames(
                    kind="Probe", plural="probes", singular="probe"
                ),
                scope="Namespaced",
                versions=[
                    crd_models.CustomResourceDefinitionVersion(
                        name="v1",
                        served=True,
                        storage=True,
                        schema=crd_models.CustomResourceValidation(
                            openAPIV3Schema=crd_models.JSONSchemaProps(
                                type="object", x_kubernetes_preserve_unknown_fields=True
                            )
                        ),
                    )
                ],
            ),
        )
    )
    install.wait_crds_established(client=kube, names=[name])
    yield namespace
    kube.delete(apiextensions_v1.CustomResourceDefinition, name)


def probe(kube: lightkube.Client, namespace: str, name: str) -> None:
    kube.create(Probe(metadata=meta_v1.ObjectMeta(name=name, namespace=namespace), spec={}))


EVENT_FRESH_SECONDS = 75
"""The apiserver keeps every watch event younger than this in its watch cache
(DefaultEventFreshDuration: the bookmark period of 60 s plus 15 s); only an older one can
be pushed out by new writes, and a watch from it is then refused with 410 Gone."""
CACHE_CAPACITY = 100
"""A fresh watch cache's capacity (defaultLowerBoundCapacity); it grows only while full
of fresh events."""


async def test_a_watch_away_longer_than_the_history_lists_again_and_a_quiet_one_lives_on_bookmarks(
    kube: lightkube.Client,
    probes: str,
    linked: faultylink.LinkedCluster,
    through_link: lightkube.AsyncClient,
    management_async: lightkube.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=watching.__name__)
    probe(kube, probes, "kept")
    probe(kube, probes, "deleted-while-away")
    away = Recorder(
        watching.watch(through_link, Probe, what="away", options=FAST, namespace=probes)
    )
    # Both run for longer than the apiserver's bookmark period, with the production
    # inactivity timeout: the quiet one must never be taken for dead. It watches Pods,
    # whose bookmarks (an empty Pod, `spec.containers: null`) the Pod model refuses.
    quiet_health = watching.Health()
    quiet = Recorder(
        watching.watch(
            management_async,
            core_v1.Pod,
            what="quiet",
            options=watching.Options(),
            namespace=probes,
            labels=MINE,
            health=quiet_health,
        )
    )
    try:
        assert names(await away.next()) == ["deleted-while-away", "kept"]
        assert names(await quiet.next()) == []
        linked.link.refuse(True)
        linked.link.cut()
        kube.delete(Probe, "deleted-while-away", namespace=probes)
        probe(kube, probes, "made-while-away")
        await asyncio.sleep(EVENT_FRESH_SECONDS + 2)
        for round_ in range(CACHE_CAPACITY + 20):
            kube.patch(
                Probe,
                "kept",
                {"spec": {"round": round_}},
                namespace=probes,
                patch_type=PatchType.MERGE,
            )
        linked.link.refuse(False)
        relisted = await away.next(seconds=60)
        probe(kube, probes, "after")
        after = await away.changed()
    finally:
        await away.stop()
        await quiet.stop()
    assert names(relisted) == ["kept", "made-while-away"]
    assert after.object.metadata.name == "after"
    assert any("410" in r.getMessage() for r in caplog.records if "away" in r.getMessage())
    assert not [r.getMessage() for r in caplog.records if "quiet" in r.getMessage()]
    assert quiet_health == watching.Health()
