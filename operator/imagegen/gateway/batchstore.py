"""ImageBatch CRs in the management cluster: the gateway's only record of a batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import lightkube
from lightkube import codecs
from lightkube.types import PatchType

from imagegen import reflector, resources

logger = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0


class BatchStore:
    """Create, read, list, cancel and follow one tenant's ImageBatches."""

    def __init__(self, *, client: lightkube.AsyncClient, watch_seconds: int) -> None:
        self._client = client
        self._watch_seconds = watch_seconds

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the CR; the apiserver's answer, with uid and creationTimestamp."""
        created = await self._client.create(codecs.from_dict(obj))
        return resources.as_dict(created)

    async def get(self, *, namespace: str, name: str, tenant: str) -> dict[str, Any] | None:
        """The batch, or None when it does not exist or is not this tenant's."""
        try:
            found = await self._client.get(resources.ImageBatch, name, namespace=namespace)
        except lightkube.ApiError as error:
            if error.status.code == 404:
                return None
            raise
        obj = resources.as_dict(found)
        return obj if _owned_by(obj, tenant) else None

    async def page(
        self, *, namespace: str, tenant: str, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` of the tenant's batches with names after `after`, in name order,
        and the name to continue after (None on the last page).

        The apiserver lists a namespace in name order; lightkube reads it in chunks and we
        stop as soon as the page is full, so a page costs the batches before it at most."""
        page: list[dict[str, Any]] = []
        listing = self._client.list(resources.ImageBatch, namespace=namespace, chunk_size=limit + 1)
        async for found in listing:
            obj = resources.as_dict(found)
            name = obj["metadata"]["name"]
            if (after is not None and name <= after) or not _owned_by(obj, tenant):
                continue
            if len(page) == limit:
                return page, page[-1]["metadata"]["name"]
            page.append(obj)
        return page, None

    async def cancel(self, *, namespace: str, name: str) -> dict[str, Any]:
        """Set spec.cancel; the operator does the rest."""
        patched = await self._client.patch(
            resources.ImageBatch,
            name,
            {"spec": {"cancel": True}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
        return resources.as_dict(patched)

    async def follow(
        self, *, namespace: str, name: str, since: str | None
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """Watch events of one CR from resourceVersion `since`: (type, object) pairs.

        The watch is renewed when the server ends it; on 410 Gone (a gap too long for the
        apiserver to replay) the current object is read and the watch restarts from it."""
        version = since
        while True:
            try:
                async for event, obj in self._client.watch(
                    resources.ImageBatch,
                    namespace=namespace,
                    fields={"metadata.name": name},
                    resource_version=version,
                    server_timeout=self._watch_seconds,
                    on_error=reflector.stop_on_gone,
                ):
                    found = resources.as_dict(obj)
                    version = found["metadata"].get("resourceVersion", version)
                    yield event, found
            # ValueError: a stream cut mid-event leaves a line lightkube cannot decode.
            except (lightkube.ApiError, httpx2.HTTPError, ValueError) as error:
                logger.warning("watch of batch %s/%s failed, retrying: %s", namespace, name, error)
                await asyncio.sleep(_RETRY_SECONDS)
            try:
                current = await self._client.get(resources.ImageBatch, name, namespace=namespace)
            except lightkube.ApiError as error:
                if error.status.code == 404:
                    return
                raise
            found = resources.as_dict(current)
            version = found["metadata"].get("resourceVersion")
            yield "MODIFIED", found


def _owned_by(obj: dict[str, Any], tenant: str) -> bool:
    # The namespace is the tenant's, but a batch naming another tenant (made with kubectl,
    # and Rejected by the operator) is still not this tenant's to see.
    return bool(obj.get("spec", {}).get("tenant") == tenant)
