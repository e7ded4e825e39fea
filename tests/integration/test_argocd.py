"""Tenants from git through a real Argo CD (repo-server and application-controller built
from Argo CD's Go module) into the management cluster, and from there by the operator
into every region."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import lightkube
import pytest
import yaml
from lightkube import codecs
from lightkube.types import PatchType

from imagegen import resources
from imagegen.localcluster import build, stack
from tests.integration import argocdproc, operatorproc, waiting
from tests.integration.tenantworld import World, new_tenant, unique_name

APP = "tenants"


@pytest.fixture(scope="module")
def argocd(
    binaries: dict[str, pathlib.Path],
    local_stack: stack.LocalStack,
    kube: lightkube.Client,
    crds_installed: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[argocdproc.GitRepo]:
    """Argo CD running against the management cluster, with a git repository to sync."""
    workdir = tmp_path_factory.mktemp("argocd")
    module = argocdproc.module_dir(build.default_source_dir() / "argocd")
    argocdproc.install_argocd(client=kube, target=local_stack.management, module=module)
    repo = argocdproc.serve_repo(workdir)
    try:
        running = argocdproc.start(
            binary=binaries["argocd"],
            module=module,
            target=local_stack.management,
            workdir=workdir,
        )
    except BaseException:
        repo.daemon.stop()
        raise
    try:
        yield repo
    finally:
        running.stop()
        repo.daemon.stop()


def app(kube: lightkube.Client) -> dict[str, Any]:
    found: dict[str, Any] = kube.get(
        argocdproc.Application, APP, namespace=argocdproc.NAMESPACE
    ).to_dict()
    return found


def app_state(kube: lightkube.Client) -> tuple[str | None, str | None]:
    status = app(kube).get("status") or {}
    return (status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status")


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
    kube.create(
        codecs.from_dict(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": APP, "namespace": argocdproc.NAMESPACE},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": argocd.url, "targetRevision": "main", "path": "tenants"},
                    "destination": {"server": local_stack.management.server},
                    # allowEmpty: pruning the last Tenant leaves the app empty, which
                    # Argo CD otherwise refuses to sync ("would wipe out all resources").
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True, "allowEmpty": True}
                    },
                },
            }
        )
    )
    seen: list[tuple[str | None, str | None]] = []

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
        try:
            world.tenant(name)
        except lightkube.ApiError as error:
            return error.status.code == 404
        return False

    waiting.until(pruned, timeout=180, interval=1, what=f"{name} pruned")
    for region in local_stack.regions:
        assert world.pool_objects(region, created["metadata"]["uid"]) == [], region
    waiting.until(
        lambda: app_state(kube) == ("Synced", "Healthy"),
        timeout=120,
        interval=1,
        what="the app settled after the prune",
    )
