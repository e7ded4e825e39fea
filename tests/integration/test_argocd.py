"""Tenants from git through a real Argo CD (repo-server and application-controller built
from Argo CD's Go module) into the management cluster, and from there by the operator
into every region."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import Iterator
from typing import Any

import lightkube
import pytest
import yaml
from lightkube.types import PatchType

from imagegen import resources
from imagegen.localcluster import redis, stack
from tests import builders
from tests.integration import (
    apiobjects,
    argoapps,
    argocdproc,
    largebatch,
    operatorproc,
    tenantworld,
    waiting,
    workerproc,
)
from tests.integration.tenantworld import World, new_tenant, unique_name

APP = "tenants"


def app_state(kube: lightkube.Client) -> argoapps.State:
    return argoapps.state(kube, APP)


def test_a_tenant_in_git_is_synced_and_turns_healthy_when_its_pools_are_ready(
    argocd: argocdproc.GitRepo,
    kube: lightkube.Client,
    local_stack: stack.LocalStack,
    running_operator: operatorproc.OperatorProcess,
) -> None:
    world = World(kube=kube, regions=local_stack.regions)
    name = unique_name("gitops")
    # maxReplicas is in git, so it is Argo CD's to keep (a field git leaves out is not).
    tenant = new_tenant(name).workers(max_replicas=20).obj()
    tenant["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "1"}
    # The README keeps the folder in git when the last Tenant file is removed.
    argocd.commit(
        {"tenants/README.md": "Tenants.\n", f"tenants/{name}.yaml": yaml.safe_dump(tenant)},
        f"add tenant {name}",
    )
    argoapps.create(
        kube=kube,
        name=APP,
        repo_url=argocd.url,
        path="tenants",
        server=local_stack.management.server,
    )
    seen: list[argoapps.State] = []

    def healthy() -> bool:
        state = app_state(kube)
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == ("Synced", "Healthy")

    waiting.until(healthy, timeout=240, interval=1, what=f"app Synced and Healthy ({seen})")
    assert ("Synced", "Progressing") in seen or ("OutOfSync", "Missing") in seen, seen
    created = world.tenant(name)
    for region in local_stack.regions:
        assert world.pool_objects(region, created["metadata"]["uid"]), region
    # What the operator wrote (status, finalizer, annotations) is no drift for Argo CD.
    assert app_state(kube) == ("Synced", "Healthy")

    # A hand edit is reverted by self-heal.
    kube.patch(
        resources.Tenant,
        name,
        {"spec": {"workers": {"maxReplicas": 7}}},
        patch_type=PatchType.MERGE,
    )
    waiting.until(
        lambda: world.tenant(name)["spec"]["workers"]["maxReplicas"] == 20,
        timeout=120,
        interval=1,
        what="self-heal reverting maxReplicas",
    )

    # A commit reaches the HPA of every region.
    tenant["spec"]["workers"]["maxReplicas"] = 30
    argocd.commit({f"tenants/{name}.yaml": yaml.safe_dump(tenant)}, f"{name}: maxReplicas 30")

    def hpas_at_30() -> bool:
        hpas = [
            world.pool_object(region, "HorizontalPodAutoscaler", f"worker-{name}")
            for region in local_stack.regions
        ]
        return all(hpa and hpa["spec"]["maxReplicas"] == 30 for hpa in hpas)

    waiting.until(hpas_at_30, timeout=180, interval=1, what="maxReplicas 30 in every region")

    # Removed from git, pruned: the finalizer cleans every region, the sync finishes.
    argocd.commit({f"tenants/{name}.yaml": ""}, f"remove {name}")

    def pruned() -> bool:
        return apiobjects.absent(world.kube, resources.Tenant, name)

    waiting.until(pruned, timeout=180, interval=1, what=f"{name} pruned")
    for region in local_stack.regions:
        assert world.pool_objects(region, created["metadata"]["uid"]) == [], region
    waiting.until(
        lambda: app_state(kube) == ("Synced", "Healthy"),
        timeout=120,
        interval=1,
        what="the app settled after the prune",
    )
    # Nor does the app outlive the test: the next module's Argo CD would keep trying the
    # git daemon this module stops.
    kube.delete(argocdproc.Application, APP, namespace=argocdproc.NAMESPACE)


def in_git(obj: dict[str, Any], *, wave: str) -> str:
    """The file git holds for obj: Tenants sync in wave 1, ImageBatches in wave 2."""
    obj["metadata"].setdefault("annotations", {})["argocd.argoproj.io/sync-wave"] = wave
    return yaml.safe_dump(obj)


def batch_file(name: str, *, tenant: str, size: str) -> str:
    """A three-item batch of `tenant`; a size the local provider refuses fails every item."""
    batch = builders.make_batch(name, tenant=tenant).namespace(f"tenant-{tenant}")
    return in_git(batch.items(3, size=size).obj(), wave="2")


@contextlib.contextmanager
def workers_of(tenant: str, *, redis_urls: dict[str, str], storage: pathlib.Path) -> Iterator[None]:
    """One worker of the tenant's dedicated pool per region, as its Deployments run them
    (the control planes here have no kubelet); all stopped on the way out."""
    pools = [
        workerproc.Workers(
            redis_url=url, storage=storage, logs=storage.parent / "logs", tenant=tenant,
            region=region,
        )
        for region, url in redis_urls.items()
    ]  # fmt: skip
    try:
        for pool in pools:
            asyncio.run(pool.start("--concurrency", "2", "--simulated-cost-seconds", "0.05"))
        yield
    finally:
        for pool in pools:
            pool.stop_all()


def wait_batch(
    kube: lightkube.Client, tenant: str, batch: str, health: str, *, cause: bool
) -> None:
    """Wait until the tenant's app (named after it) has synced the batch and has `health`,
    caused by the batch when `cause`: Argo CD names the resources that make an app less
    than Healthy."""

    def reached() -> bool:
        if argoapps.state(kube, tenant) != ("Synced", health):
            return False
        if not argoapps.synced(kube, tenant, kind="ImageBatch", resource=batch):
            return False
        message = argoapps.health_message(kube, tenant)
        return not cause or message.endswith(f"ImageBatch:tenant-{tenant}/{batch}")

    argoapps.until(kube, tenant, reached, timeout=180, what=f"{batch} synced, app {health}")


def synced_tenant(
    argocd: argocdproc.GitRepo, kube: lightkube.Client, server: str, *regions: str
) -> str:
    """A Tenant committed to a folder of its own and synced by an Application of the
    same name, Healthy (its pools ready in every region); returns that name."""
    name = unique_name("gitops")
    tenant = in_git(new_tenant(name, *regions).obj(), wave="1")
    argocd.commit({f"{name}/tenant.yaml": tenant}, f"add tenant {name}")
    argoapps.create(kube=kube, name=name, repo_url=argocd.url, path=name, server=server)
    argoapps.wait(kube, name, ("Synced", "Healthy"), timeout=240)
    return name


def test_imagebatches_in_git_turn_healthy_when_they_succeed_and_degraded_when_they_fail(
    argocd: argocdproc.GitRepo,
    kube: lightkube.Client,
    local_stack: stack.LocalStack,
    region_redis: dict[str, redis.LocalRedis],
    running_operator: operatorproc.OperatorProcess,
    tmp_path: pathlib.Path,
) -> None:
    region = "us-east"
    name = synced_tenant(argocd, kube, local_stack.management.server, region)
    argocd.commit({f"{name}/good.yaml": batch_file("good", tenant=name, size="64x64")}, "good")
    # No worker runs yet, so the batch waits in its queue: Argo CD says Progressing.
    wait_batch(kube, name, "good", "Progressing", cause=True)

    with workers_of(name, redis_urls={region: region_redis[region].url}, storage=tmp_path / "out"):
        wait_batch(kube, name, "good", "Healthy", cause=False)

        argocd.commit({f"{name}/bad.yaml": batch_file("bad", tenant=name, size="9000x9000")}, "bad")
        wait_batch(kube, name, "bad", "Degraded", cause=True)
    bad = kube.get(resources.ImageBatch, "bad", namespace=f"tenant-{name}").to_dict()
    assert bad["status"]["phase"] == "Failed"
    assert len(list((tmp_path / "out").rglob("*.png"))) == 3
    forget(kube, name)


def test_syncing_the_same_state_again_writes_nothing_to_any_region(
    argocd: argocdproc.GitRepo,
    kube: lightkube.Client,
    local_stack: stack.LocalStack,
    region_redis: dict[str, redis.LocalRedis],
    running_operator: operatorproc.OperatorProcess,
    tmp_path: pathlib.Path,
) -> None:
    name = synced_tenant(argocd, kube, local_stack.management.server)
    urls = {region: server.url for region, server in region_redis.items()}
    with workers_of(name, redis_urls=urls, storage=tmp_path / "out"):
        argocd.commit({f"{name}/done.yaml": batch_file("done", tenant=name, size="64x64")}, "b")
        wait_batch(kube, name, "done", "Healthy", cause=False)

    def written_by_git() -> tuple[Any, ...]:
        # The Tenant's status follows its HPAs (conditions copied), so its resourceVersion
        # may move on its own; what a sync could write is its generation and metadata.
        # The finished batch does not change at all.
        tenant = kube.get(resources.Tenant, name).to_dict()["metadata"]
        batch = kube.get(resources.ImageBatch, "done", namespace=f"tenant-{name}")
        return (
            tenant["generation"],
            tenant.get("annotations"),
            tenant.get("labels"),
            batch.to_dict()["metadata"]["resourceVersion"],
        )

    as_synced = written_by_git()
    regions = local_stack.regions

    def requests_to(region: str) -> list[dict[str, Any]]:
        return tenantworld.operator_requests(regions[region])

    before = {region: len(requests_to(region)) for region in regions}
    argoapps.resync(kube, name, initiated_by="resync-test")
    phase = waiting.until(
        lambda: argoapps.operation_finished(kube, name, initiated_by="resync-test"),
        timeout=120,
        interval=1,
        what="the re-sync to finish",
    )
    assert phase == "Succeeded"
    synced = {region: len(requests_to(region)) for region in regions}

    def looked_again() -> bool:
        # The operator checked every region twice since the re-sync ended (each drift
        # check LISTs the pools' HPAs, among others): a write the re-sync led it to
        # would have been made by then.
        hpa_lists = [
            sum(
                1
                for e in requests_to(region)[synced[region] :]
                if e["verb"] == "list"
                and e["objectRef"].get("resource") == "horizontalpodautoscalers"
            )
            for region in regions
        ]
        return min(hpa_lists) >= 2

    waiting.until(looked_again, timeout=60, interval=1, what="drift checks after the re-sync")
    for region in regions:
        writes = [
            f"{e['verb']} {e['objectRef'].get('resource')}/{e['objectRef'].get('name')}"
            for e in requests_to(region)[before[region] :]
            if e["verb"] in tenantworld.WRITE_VERBS
        ]
        assert writes == [], region
    # Nor did the re-sync change what git sets in the management cluster.
    assert written_by_git() == as_synced
    assert argoapps.state(kube, name) == ("Synced", "Healthy")
    forget(kube, name)


def forget(kube: lightkube.Client, name: str) -> None:
    """Delete the Application (it does not prune) and its Tenant, and wait until the
    operator has cleaned the regions: later tests of the session start from a quiet
    operator."""
    kube.delete(argocdproc.Application, name, namespace=argocdproc.NAMESPACE)
    apiobjects.delete_and_wait(kube, resources.Tenant, name, what=f"Tenant {name} deleted")


@pytest.mark.parametrize("alphabet", sorted(largebatch.ALPHABETS))
def test_the_largest_valid_batch_in_git_is_synced_run_and_pruned(
    argocd: argocdproc.GitRepo,
    kube: lightkube.Client,
    local_stack: stack.LocalStack,
    running_operator: operatorproc.OperatorProcess,
    alphabet: str,
) -> None:
    # Argo CD applies as kubectl apply does, keeping the same copy in an annotation.
    name = synced_tenant(argocd, kube, local_stack.management.server, "us-east")
    manifest = largebatch.batch_manifest("largest", name, largebatch.largest_items(alphabet))
    argocd.commit({f"{name}/largest.yaml": in_git(manifest, wave="2")}, "the largest batch")
    wait_batch(kube, name, "largest", "Progressing", cause=True)
    handled = largebatch.wait_handled(kube, name, "largest")
    assert largebatch.annotation_bytes(handled) < largebatch.ANNOTATIONS_LIMIT

    argocd.commit({f"{name}/largest.yaml": ""}, "the largest batch goes")
    waiting.until(
        lambda: apiobjects.absent(kube, resources.ImageBatch, "largest", f"tenant-{name}"),
        timeout=180,
        what="the pruned batch deleted, its finalizer removed",
    )
    forget(kube, name)
