"""The GitOps files this repository ships, through a real Argo CD: the ApplicationSet
(gitops/applications/applicationset.yaml), run by Argo CD's own applicationset-controller,
makes one Application per folder of gitops/environments/, each bound for a management
cluster of its own; staging's syncs the shipped Tenant and ImageBatch into the test
management cluster, registered as management-staging. Then the single Application
(gitops/applications/imagegen-staging.yaml) holds the same objects. Both files are read
as shipped, with only their repository URLs pointed at the test's git daemon."""

from __future__ import annotations

import contextlib
import functools
import json
import pathlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import lightkube
import pytest
import yaml
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.localcluster import process, stack
from tests.integration import apiobjects, argoapps, argocdproc, operatorproc, tenantworld, waiting

T = TypeVar("T")
GITOPS = pathlib.Path(__file__).resolve().parents[2] / "gitops"
APPSET = "imagegen-tenants"
APPS = {env: f"imagegen-tenants-{env}" for env in ("production", "staging")}
CLUSTERS = {env: f"management-{env}" for env in APPS}
KINDS: dict[str, Any] = {"Tenant": resources.Tenant, "ImageBatch": resources.ImageBatch}


def shipped_application(file: str, *, repo_url: str) -> dict[str, Any]:
    """A file of gitops/applications as shipped, with every `repoURL` in it replaced."""
    obj: dict[str, Any] = yaml.safe_load((GITOPS / "applications" / file).read_text())
    assert _replace_repo_urls(obj, repo_url), f"{file} names no repoURL"
    return obj


def _replace_repo_urls(node: Any, url: str) -> int:
    if isinstance(node, list):
        return sum(_replace_repo_urls(item, url) for item in node)
    if not isinstance(node, dict):
        return 0
    count = sum(_replace_repo_urls(value, url) for value in node.values())
    if "repoURL" in node:
        node["repoURL"] = url
        count += 1
    return count


def shipped(environment: str, kind: str) -> dict[str, Any]:
    """The shipped environment's object of `kind` (each folder has one of each)."""
    folder = GITOPS / "environments" / environment
    objects = [o for path in folder.glob("*.yaml") for o in yaml.safe_load_all(path.read_text())]
    (found,) = (obj for obj in objects if obj["kind"] == kind)
    result: dict[str, Any] = found
    return result


def environment_files() -> dict[str, str]:
    """Every file of gitops/environments, verbatim, under the same path in the test repo."""
    root = GITOPS.parent
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted((GITOPS / "environments").rglob("*"))
        if path.is_file()
    }


def generated_apps(kube: lightkube.Client) -> list[str]:
    """Names of the Applications the ApplicationSet owns."""
    return sorted(
        app["metadata"]["name"]
        for app in (
            found.to_dict()
            for found in kube.list(argocdproc.Application, namespace=argocdproc.NAMESPACE)
        )
        if any(
            owner["kind"] == "ApplicationSet" and owner["name"] == APPSET
            for owner in app["metadata"].get("ownerReferences") or ()
        )
    )


def appset_error(kube: lightkube.Client) -> str | None:
    """The message of the ApplicationSet's ErrorOccurred condition, while it is True."""
    appset = kube.get(argocdproc.ApplicationSet, APPSET, namespace=argocdproc.NAMESPACE)
    conditions = (appset.to_dict().get("status") or {}).get("conditions") or ()
    return next(
        (
            c["message"]
            for c in conditions
            if c["type"] == "ErrorOccurred" and c["status"] == "True"
        ),
        None,
    )


def appset_until(
    kube: lightkube.Client, argocd: argocdproc.ArgoCD, probe: Callable[[], T | None], what: str
) -> T:
    """waiting.until, failing with the ApplicationSet's status, the Applications it owns
    and the end of the applicationset-controller's log."""

    def explain() -> str:
        try:
            appset = kube.get(argocdproc.ApplicationSet, APPSET, namespace=argocdproc.NAMESPACE)
            status = json.dumps(appset.to_dict().get("status"))
        except lightkube.ApiError as error:
            status = f"not there ({error.status.message})"
        log = argocd.log_tail("argocd-applicationset-controller")
        return f"its status is {status}; it owns {generated_apps(kube)}{log}"

    return waiting.until(
        probe, timeout=60, interval=1, what=f"ApplicationSet {APPSET}: {what}", explain=explain
    )


def test_the_shipped_applicationset_sends_each_environment_to_its_own_cluster(
    argocd: argocdproc.GitRepo,
    argocd_controllers: argocdproc.ArgoCD,
    kube: lightkube.Client,
    local_stack: stack.LocalStack,
    world: tenantworld.World,
    staging_forgotten: None,
) -> None:
    argocd.commit(environment_files(), "the shipped environments")
    management = local_stack.management
    argocdproc.apply(kube, argocdproc.cluster_secret(name=CLUSTERS["staging"], target=management))
    # Production is not registered: this test has one management cluster, and
    # registering it under both names would have both apps own Tenant metaphysical, the
    # very fight a cluster per environment avoids.
    argocdproc.apply(kube, shipped_application("applicationset.yaml", repo_url=argocd.url))

    # The controller renders an app for every folder, but creates none whose destination
    # is not a registered cluster, and says so in the ApplicationSet's status.
    appset_until(
        kube,
        argocd_controllers,
        lambda: (
            generated_apps(kube) == [APPS["staging"]]
            and CLUSTERS["production"] in (appset_error(kube) or "")
        ),
        f"{APPS['staging']} made, {CLUSTERS['production']} unknown",
    )
    # Production's cluster registered where no cluster answers (this test has none for
    # it): on the next refresh its app is made too, and reaches nothing.
    unreachable = f"https://127.0.0.1:{process.free_port()}"
    argocdproc.apply(
        kube,
        argocdproc.cluster_secret(
            name=CLUSTERS["production"], target=management, server=unreachable
        ),
    )
    refresh(kube)
    appset_until(
        kube,
        argocd_controllers,
        lambda: generated_apps(kube) == sorted(APPS.values()),
        f"{sorted(APPS.values())} made",
    )
    for environment in APPS:
        check_generated(kube, environment, repo_url=argocd.url)

    argoapps.until(
        kube,
        APPS["staging"],
        lambda: synced_and_done(kube, APPS["staging"]),
        timeout=240,
        what="Synced, its sync Succeeded",
        argocd=argocd_controllers,
    )
    tenant, batch = shipped("staging", "Tenant"), shipped("staging", "ImageBatch")
    live = {obj["kind"]: live_object(kube, obj) for obj in (tenant, batch)}
    argoapps.until(
        kube,
        APPS["production"],
        lambda: cannot_reach_its_cluster(kube, APPS["production"]),
        timeout=60,
        what=f"a ComparisonError: nothing answers at {unreachable}",
        argocd=argocd_controllers,
    )
    # The one Tenant is staging's, not production's.
    production = shipped("production", "Tenant")["spec"]
    assert production["regions"] != tenant["spec"]["regions"] == ["us-east", "eu-west"]
    assert production["workers"]["maxReplicas"] != tenant["spec"]["workers"]["maxReplicas"] == 10
    spec = live_object(kube, tenant)["spec"]
    assert (spec["regions"], spec["workers"]["maxReplicas"]) == (["us-east", "eu-west"], 10)

    # Deleting the ApplicationSet deletes its Applications (their owner), and those,
    # without Argo CD's resources finalizer, leave what they synced in place.
    kube.delete(argocdproc.ApplicationSet, APPSET, namespace=argocdproc.NAMESPACE)
    for name in APPS.values():
        argoapps.until(
            kube,
            name,
            functools.partial(
                apiobjects.absent, kube, argocdproc.Application, name, argocdproc.NAMESPACE
            ),
            timeout=60,
            what="deleted with its ApplicationSet",
            argocd=argocd_controllers,
        )
    for obj in (tenant, batch):
        assert uid(live_object(kube, obj)) == uid(live[obj["kind"]]), obj["kind"]

    # The single Application, as shipped, takes over the same objects: its path and its
    # cluster's name resolve, and git matches what is there (so it has nothing to sync).
    argocdproc.apply(kube, shipped_application("imagegen-staging.yaml", repo_url=argocd.url))

    def holds_staging() -> bool:
        return argoapps.state(kube, APPS["staging"])[0] == "Synced" and all(
            argoapps.synced(kube, APPS["staging"], kind=o["kind"], resource=o["metadata"]["name"])
            for o in (tenant, batch)
        )

    argoapps.until(
        kube,
        APPS["staging"],
        holds_staging,
        timeout=120,
        what="Synced, holding the staging Tenant and ImageBatch",
        argocd=argocd_controllers,
    )
    compared = argoapps.get(kube, APPS["staging"])["status"]["sync"]["comparedTo"]
    assert compared["destination"] == {"name": CLUSTERS["staging"]}
    for obj in (tenant, batch):
        assert uid(live_object(kube, obj)) == uid(live[obj["kind"]]), obj["kind"]


def refresh(kube: lightkube.Client) -> None:
    """Have the ApplicationSet generate again now: a git generator's app set otherwise
    waits three minutes, and a new cluster Secret does not wake it."""
    kube.patch(
        argocdproc.ApplicationSet,
        APPSET,
        {"metadata": {"annotations": {"argocd.argoproj.io/application-set-refresh": "true"}}},
        namespace=argocdproc.NAMESPACE,
        patch_type=PatchType.MERGE,
    )


def check_generated(kube: lightkube.Client, environment: str, *, repo_url: str) -> None:
    """The environment's app syncs its folder into its own cluster and, the ApplicationSet
    preserving resources on deletion, carries no resources finalizer."""
    app = argoapps.get(kube, APPS[environment])
    assert app["spec"]["source"] == {
        "repoURL": repo_url,
        "targetRevision": "main",
        "path": f"gitops/environments/{environment}",
    }
    assert app["spec"]["destination"] == {"name": CLUSTERS[environment]}
    assert not app["metadata"].get("finalizers"), app["metadata"]


def synced_and_done(kube: lightkube.Client, name: str) -> bool:
    """Whether the app is Synced with git and its last sync Succeeded."""
    operation = (argoapps.get(kube, name).get("status") or {}).get("operationState") or {}
    return argoapps.state(kube, name)[0] == "Synced" and operation.get("phase") == "Succeeded"


def live_object(kube: lightkube.Client, obj: dict[str, Any]) -> dict[str, Any]:
    """What the management cluster holds of a shipped Tenant or ImageBatch."""
    kind, namespace = KINDS[obj["kind"]], obj["metadata"].get("namespace")
    found: dict[str, Any] = kube.get(kind, obj["metadata"]["name"], namespace=namespace).to_dict()
    return found


def uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["uid"])


def cannot_reach_its_cluster(kube: lightkube.Client, name: str) -> bool:
    """Whether Argo CD says it could not compare the app with its cluster."""
    status = argoapps.get(kube, name).get("status") or {}
    return any(c.get("type") == "ComparisonError" for c in status.get("conditions") or ())


@pytest.fixture
def staging_forgotten(
    kube: lightkube.Client,
    world: tenantworld.World,
    running_operator: operatorproc.OperatorProcess,
) -> Iterator[None]:
    """After the test, pass or fail: its Argo CD objects deleted (the Applications before
    the Tenant, so nothing syncs it back), then the shipped batch and Tenant, waiting
    until the operator has emptied every region of the Tenant's pool: later tests of the
    session start from a quiet operator."""
    yield
    argo_objects: list[tuple[Any, str]] = [
        (argocdproc.ApplicationSet, APPSET),
        *((argocdproc.Application, app) for app in APPS.values()),
        *((core_v1.Secret, cluster) for cluster in CLUSTERS.values()),
    ]
    for kind, name in argo_objects:
        with contextlib.suppress(lightkube.ApiError):  # gone already is as good
            kube.delete(kind, name, namespace=argocdproc.NAMESPACE)
    tenant, batch = shipped("staging", "Tenant"), shipped("staging", "ImageBatch")
    pooled = (
        []
        if apiobjects.absent(kube, resources.Tenant, tenant["metadata"]["name"])
        else world.regions
    )
    tenant_uid = uid(live_object(kube, tenant)) if pooled else ""
    for obj in (batch, tenant):  # the batch first: its Tenant admitted it
        forget(kube, obj, operator=running_operator)
    for region in pooled:
        assert world.pool_objects(region, tenant_uid) == [], region


def forget(
    kube: lightkube.Client, obj: dict[str, Any], *, operator: operatorproc.OperatorProcess
) -> None:
    """Delete a shipped object and wait until it is gone: the operator's finalizer first
    undoes what it made of it (queued items, every region's pool)."""
    apiobjects.delete_and_wait(
        kube,
        KINDS[obj["kind"]],
        obj["metadata"]["name"],
        obj["metadata"].get("namespace"),
        what=f"{obj['kind']} {obj['metadata']['name']} deleted",
        explain=lambda: f"the operator's log ends:\n{operator.log()[-3000:]}",
    )
