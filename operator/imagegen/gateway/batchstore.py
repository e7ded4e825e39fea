"""ImageBatch CRs in the management cluster: the gateway's only record of a batch."""

from __future__ import annotations

from typing import Any

import lightkube
from lightkube import codecs
from lightkube.types import PatchType

from imagegen import resources
from imagegen.kube import objects


class BatchStore:
    """Create, read, list and cancel one tenant's ImageBatches (streams follow them through
    the shared watches of streamhub)."""

    def __init__(self, *, client: lightkube.AsyncClient) -> None:
        self._client = client

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create the CR; the apiserver's answer, with uid and creationTimestamp."""
        created = await self._client.create(codecs.from_dict(obj))
        return resources.as_dict(created)

    async def get(self, *, namespace: str, name: str, tenant: str) -> dict[str, Any] | None:
        """The batch, or None when it does not exist or is not this tenant's."""
        found = await objects.get_or_none(
            self._client, resources.ImageBatch, name, namespace=namespace
        )
        if found is None:
            return None
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


def _owned_by(obj: dict[str, Any], tenant: str) -> bool:
    # The namespace is the tenant's, but a batch naming another tenant (made with kubectl,
    # and Rejected by the operator) is still not this tenant's to see.
    return bool(obj.get("spec", {}).get("tenant") == tenant)
