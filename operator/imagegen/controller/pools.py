"""Make one regional cluster hold exactly the objects rendered for it, and read back
what they report. Objects that already match are only read, never written."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lightkube import codecs
from lightkube.core import resource_registry
from lightkube.resources import apps_v1, autoscaling_v2, core_v1, policy_v1

from imagegen import regions, resources
from imagegen.controller import drift, livecache
from imagegen.kube import objects

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


async def apply(
    *,
    region: regions.RegionClient,
    cache: livecache.LiveCache,
    manifests: Sequence[Mapping[str, Any]],
) -> Applied:
    """Server-side apply every manifest that the live object does not already contain."""
    result = Applied()
    for manifest in manifests:
        resource = _resource_class(manifest)
        name = manifest["metadata"]["name"]
        namespace = manifest["metadata"].get("namespace")
        live = await cache.get(resource=resource, namespace=namespace, name=name)
        if live is None or not drift.contains(live=live, desired=manifest):
            async with region.call() as client:
                applied = await client.apply(codecs.from_dict(dict(manifest)), force=True)
            live = resources.as_dict(applied)
            cache.put(resource=resource, namespace=namespace, obj=live)
            result.writes += 1
        result.live[manifest["kind"]] = live
    return result


async def delete_owned(
    *,
    region: regions.RegionClient,
    cache: livecache.LiveCache,
    namespace: str,
    selector: Mapping[str, str],
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
                await objects.delete_if_present(client, resource, name, namespace=namespace)
            cache.forget(resource=resource, namespace=namespace, name=name)
            deleted += 1
    return deleted


def _resource_class(manifest: Mapping[str, Any]) -> type[Any]:
    resource: type[Any] = resource_registry.resource_registry.load(
        manifest["apiVersion"], manifest["kind"]
    )
    return resource
