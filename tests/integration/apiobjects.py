"""Whether the apiserver still holds an object, and deleting one until it is gone (its
finalizers run first: the operator's cleanup, Argo CD's), for every integration test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import lightkube

from imagegen.kube import objects
from tests.integration import waiting


def absent(kube: lightkube.Client, kind: Any, name: str, namespace: str | None = None) -> bool:
    """Whether the apiserver answers 404 for the object."""
    try:
        kube.get(kind, name, namespace=namespace)
    except lightkube.ApiError as error:
        return objects.status_of(error) == objects.NOT_FOUND
    return False


def delete_and_wait(
    kube: lightkube.Client,
    kind: Any,
    name: str,
    namespace: str | None = None,
    *,
    timeout: float = 120,
    what: str = "",
    explain: Callable[[], str] | None = None,
) -> None:
    """Delete the object (gone already is as good) and wait until the apiserver no longer
    has it, its finalizers done."""
    with contextlib.suppress(lightkube.ApiError):
        kube.delete(kind, name, namespace=namespace)
    waiting.until(
        lambda: absent(kube, kind, name, namespace),
        timeout=timeout,
        interval=0.5,
        what=what or f"{name} deleted",
        explain=explain,
    )
