"""lightkube resource classes for our custom resources: the kinds of api/ as Kubernetes
clients see them. How clients are built, objects read and watched is imagegen.kube's."""

from __future__ import annotations

from typing import Any

from lightkube import generic_resource

from imagegen.api import meta

Tenant = generic_resource.create_global_resource(
    group=meta.GROUP, version=meta.VERSION, kind="Tenant", plural="tenants"
)
ImageBatch = generic_resource.create_namespaced_resource(
    group=meta.GROUP, version=meta.VERSION, kind="ImageBatch", plural="imagebatches"
)


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object as the plain dict the apiserver sent."""
    plain: dict[str, Any] = obj.to_dict()
    return plain
