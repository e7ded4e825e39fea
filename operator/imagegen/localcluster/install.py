"""Install CRDs and manifests into a cluster, as `kubectl apply --server-side` would."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterable

import lightkube
from lightkube import codecs
from lightkube.resources import apiextensions_v1

# Imported for its effect: it registers Tenant and ImageBatch with lightkube's YAML codecs.
from imagegen import resources  # noqa: F401

# Namespaces and CRDs must exist before what lives in them, Tenants before their batches.
_KIND_ORDER = ("CustomResourceDefinition", "Namespace", "Tenant")


def apply_files(*, client: lightkube.Client, paths: Iterable[pathlib.Path]) -> list[str]:
    """Server-side apply every object of the YAML files; return 'Kind/name' of each."""
    objects = [obj for path in sorted(paths) for obj in codecs.load_all_yaml(path.read_text())]
    objects.sort(key=_kind_rank)
    applied = []
    for obj in objects:
        client.apply(obj, force=True)
        applied.append(f"{obj.kind}/{obj.metadata.name}")  # type: ignore[union-attr]
    return applied


def wait_crds_established(
    *, client: lightkube.Client, names: Iterable[str], timeout_seconds: float = 30.0
) -> None:
    """Wait until every named CRD reports Established=True."""
    deadline = time.monotonic() + timeout_seconds
    for name in names:
        while not _established(client.get(apiextensions_v1.CustomResourceDefinition, name)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established within {timeout_seconds}s")
            time.sleep(0.1)


def _established(crd: apiextensions_v1.CustomResourceDefinition) -> bool:
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _kind_rank(obj: object) -> int:
    kind = getattr(obj, "kind", "")
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
