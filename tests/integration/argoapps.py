"""Argo CD Applications as tests make and read them: one per folder of the test's git
repository, synced automatically into the management cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import lightkube
from lightkube import codecs
from lightkube.types import PatchType

from tests.integration import argocdproc, waiting

T = TypeVar("T")
State = tuple[str | None, str | None]
"""(sync status, health status) of an Application, as `argocd app get` shows them."""


def create(*, kube: lightkube.Client, name: str, repo_url: str, path: str, server: str) -> None:
    """An Application syncing `path` of the repository's main branch, with prune and
    self-heal, as gitops/applications/ sets them."""
    kube.create(
        codecs.from_dict(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": name, "namespace": argocdproc.NAMESPACE},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
                    "destination": {"server": server},
                    # allowEmpty: pruning the last resource leaves the app empty, which
                    # Argo CD otherwise refuses to sync ("would wipe out all resources").
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True, "allowEmpty": True}
                    },
                },
            }
        )
    )


def get(kube: lightkube.Client, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.get(
        argocdproc.Application, name, namespace=argocdproc.NAMESPACE
    ).to_dict()
    return found


def state(kube: lightkube.Client, name: str) -> State:
    status = get(kube, name).get("status") or {}
    return (status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status")


def health_message(kube: lightkube.Client, name: str) -> str:
    """What Argo CD says of the app's health; when it is not Healthy, the resources that
    make it so ("Caused by imagegen.semantest.io/ImageBatch:NAMESPACE/NAME"). Argo CD 3
    keeps each resource's own health out of the Application by default."""
    message: str = ((get(kube, name).get("status") or {}).get("health") or {}).get("message", "")
    return message


def synced(kube: lightkube.Client, name: str, *, kind: str, resource: str) -> bool:
    """Whether the app lists the resource as Synced with git."""
    return any(
        entry.get("kind") == kind
        and entry.get("name") == resource
        and entry.get("status") == "Synced"
        for entry in (get(kube, name).get("status") or {}).get("resources") or ()
    )


def resync(kube: lightkube.Client, name: str, *, initiated_by: str) -> None:
    """Hard refresh (manifests generated again, caches bypassed), then a sync of the
    revision already synced, as `argocd app sync --revision <synced>` would start it."""
    revision = (get(kube, name)["status"]["sync"]).get("revision")
    kube.patch(
        argocdproc.Application,
        name,
        {
            "metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}},
            "operation": {
                "initiatedBy": {"username": initiated_by},
                "sync": {"revision": revision},
            },
        },
        namespace=argocdproc.NAMESPACE,
        patch_type=PatchType.MERGE,
    )


def operation_finished(kube: lightkube.Client, name: str, *, initiated_by: str) -> str | None:
    """The phase of the sync `initiated_by` started, once it has ended; else None."""
    app = get(kube, name)
    operation = (app.get("status") or {}).get("operationState") or {}
    started_by = (operation.get("operation") or {}).get("initiatedBy") or {}
    if app.get("operation") or started_by.get("username") != initiated_by:
        return None
    phase: str | None = operation.get("phase")
    return phase if phase in ("Succeeded", "Failed", "Error") else None


def describe(kube: lightkube.Client, name: str) -> str:
    """What Argo CD says of the app, for failure messages: sync and health (naming the
    resources that keep it from Healthy), its conditions and its last operation."""
    try:
        status = get(kube, name).get("status") or {}
    except lightkube.ApiError as error:
        return f"not there ({error.status.message})"
    operation = status.get("operationState") or {}
    return json.dumps(
        {
            "sync": (status.get("sync") or {}).get("status"),
            "health": status.get("health"),
            "conditions": status.get("conditions"),
            "operation": {key: operation.get(key) for key in ("phase", "message")},
        }
    )


def until(
    kube: lightkube.Client,
    name: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    argocd: argocdproc.ArgoCD | None = None,
) -> T:
    """waiting.until, failing with what Argo CD says of the app at the end and, given the
    running `argocd`, the end of its application-controller's log."""

    def explain() -> str:
        log = argocd.log_tail("argocd-application-controller") if argocd else ""
        return f"the app is {describe(kube, name)}{log}"

    return waiting.until(
        probe, timeout=timeout, interval=1, what=f"app {name}: {what}", explain=explain
    )


def wait(
    kube: lightkube.Client,
    name: str,
    wanted: State,
    *,
    timeout: float,
    argocd: argocdproc.ArgoCD | None = None,
) -> None:
    """Wait until the app's (sync, health) is `wanted`."""
    until(
        kube,
        name,
        lambda: state(kube, name) == wanted,
        timeout=timeout,
        what=f"{wanted}",
        argocd=argocd,
    )
