"""What one regional cluster holds of ours, listed once per kind and reused for a while.

Comparing each Tenant's objects with a GET apiece makes drift checks cost five requests
per Tenant per region per interval (about 83 % of a region's request budget at 200
Tenants). A LIST per kind, shared by every Tenant and refreshed when older than
`max_age`, costs the same few requests whatever the number of Tenants. What we apply
or delete updates the cache at once, so our own writes are never seen stale; a change
made by someone else is seen within max_age plus one drift interval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from imagegen import regions
from imagegen.kube import objects
from imagegen.render import labels


@dataclasses.dataclass(kw_only=True)
class _Listing:
    taken_at: float
    objects: dict[str, dict[str, Any]]


class LiveCache:
    """Recently read objects of one region, by kind and namespace."""

    def __init__(
        self,
        *,
        region: regions.RegionClient,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._region = region
        self._max_age = max_age
        self._clock = clock
        self._listings: dict[tuple[type[Any], str | None], _Listing] = {}
        self._locks: dict[tuple[type[Any], str | None], asyncio.Lock] = {}

    async def get(
        self, *, resource: type[Any], namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object as last read or written, refreshed when older than max_age."""
        key = (resource, namespace)
        async with self._locks.setdefault(key, asyncio.Lock()):
            listing = self._listings.get(key)
            stale = listing is None or self._clock() - listing.taken_at > self._max_age
            if namespace is None:
                # Cluster-scoped objects (the workers Namespace) may only be read by name.
                if stale or listing is None or name not in listing.objects:
                    listing = await self._fetch_one(resource=resource, name=name, listing=listing)
            elif stale or listing is None:
                listing = await self._list(resource=resource, namespace=namespace)
            self._listings[key] = listing
            return listing.objects.get(name)

    def put(self, *, resource: type[Any], namespace: str | None, obj: dict[str, Any]) -> None:
        """Remember an object we just wrote, as the apiserver returned it."""
        listing = self._listings.get((resource, namespace))
        if listing is not None:
            listing.objects[obj["metadata"]["name"]] = obj

    def forget(self, *, resource: type[Any], namespace: str | None, name: str) -> None:
        """Drop an object we just deleted."""
        listing = self._listings.get((resource, namespace))
        if listing is not None:
            listing.objects.pop(name, None)

    async def _list(self, *, resource: type[Any], namespace: str) -> _Listing:
        taken_at = self._clock()
        selector: dict[str, Any] = labels.managed()
        async with self._region.call() as client:
            listed = {
                obj.metadata.name: obj.to_dict()
                async for obj in client.list(resource, namespace=namespace, labels=selector)
                if obj.metadata is not None and obj.metadata.name is not None
            }
        return _Listing(taken_at=taken_at, objects=listed)

    async def _fetch_one(
        self, *, resource: type[Any], name: str, listing: _Listing | None
    ) -> _Listing:
        taken_at = self._clock()
        async with self._region.call() as client:
            obj = await objects.get_or_none(client, resource, name)
        found: dict[str, Any] | None = None if obj is None else obj.to_dict()
        kept = dict(listing.objects) if listing else {}
        kept.pop(name, None)
        if found is not None:
            kept[name] = found
        return _Listing(taken_at=taken_at, objects=kept)
