"""Make one regional cluster hold exactly the objects rendered for it, and read back
what they report. Objects that already match are only read, never written."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import lightkube
from lightkube import codecs
from lightkube.core import resource_registry
from lightkube.resources import apps_v1, autoscaling_v2, core_v1, policy_v1

from imagegen import regions
from imagegen.controller import drift

# Kinds a Tenant owns in a region, in deletion order: the autoscaler before what it
# scales, the Deployment before the ServiceAccount its pods run as.
OWNED_KINDS: tuple[type[Any], ...] = (
    autoscaling_v2.HorizontalPodAutoscaler,
    policy_v1.PodDisruptionBudget,
    apps_v1.Deployment,
    core_v1.ServiceAccount,
)


@dataclasses.dataclass(kw_only=True)
class Applied:
    """What one pass over a region's manifests did and saw."""

    writes: int = 0
    """Objects created or changed; zero when the region already matched."""
    live: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """The objects after the pass, by kind."""


async def apply(*, region: regions.RegionClient, manifests: Sequence[Mapping[str, Any]]) -> Applied:
    """Server-side apply every manifest that the live object does not already contain."""
    result = Applied()
    for manifest in manifests:
        resource = _resource_class(manifest)
        name = manifest["metadata"]["name"]
        namespace = manifest["metadata"].get("namespace")
        live = await _get(region=region, resource=resource, name=name, namespace=namespace)
        if live is None or not drift.contains(live=live, desired=manifest):
            async with region.call() as client:
                applied = await client.apply(codecs.from_dict(dict(manifest)), force=True)
            live = as_dict(applied)
            result.writes += 1
        result.live[manifest["kind"]] = live
    return result


async def read(
    *, region: regions.RegionClient, resource: type[Any], name: str, namespace: str
) -> dict[str, Any] | None:
    """The live object as a dict, or None when it does not exist."""
    return await _get(region=region, resource=resource, name=name, namespace=namespace)


async def delete_owned(
    *, region: regions.RegionClient, namespace: str, selector: Mapping[str, str]
) -> int:
    """Delete every object of the owned kinds that carries the selector's labels."""
    deleted = 0
    for resource in OWNED_KINDS:
        async with region.call() as client:
            names = [
                obj.metadata.name
                async for obj in client.list(resource, namespace=namespace, labels=dict(selector))
                if obj.metadata is not None and obj.metadata.name is not None
            ]
        for name in names:
            async with region.call() as client:
                try:
                    await client.delete(resource, name, namespace=namespace)
                except lightkube.ApiError as error:
                    if error.status.code != 404:
                        raise
            deleted += 1
    return deleted


async def _get(
    *, region: regions.RegionClient, resource: type[Any], name: str, namespace: str | None
) -> dict[str, Any] | None:
    async with region.call() as client:
        try:
            if namespace is None:
                obj = await client.get(resource, name)
            else:
                obj = await client.get(resource, name, namespace=namespace)
        except lightkube.ApiError as error:
            if error.status.code == 404:
                return None
            raise
    return as_dict(obj)


def as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object as the plain dict the apiserver sent."""
    plain: dict[str, Any] = obj.to_dict()
    return plain


def _resource_class(manifest: Mapping[str, Any]) -> type[Any]:
    resource: type[Any] = resource_registry.resource_registry.load(
        manifest["apiVersion"], manifest["kind"]
    )
    return resource
