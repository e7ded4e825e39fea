"""From a batch's status to its images' bytes: which items have one, where each lies,
and reading it (presigned link or stream), for the image, list and zip routes alike."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import responses

from imagegen.api import objectstore
from imagegen.gateway import imagestores, problems, services
from imagegen.storage import base

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Image:
    """One succeeded item's image, as the status records it."""

    item_id: str
    uri: str

    @property
    def file_name(self) -> str:
        """`<item id>.<ext>`, the extension taken from the URI."""
        return f"{self.item_id}{pathlib.PurePosixPath(self.uri).suffix}"

    @property
    def content_type(self) -> str:
        """By extension; what the worker stored it as."""
        extension = pathlib.PurePosixPath(self.uri).suffix.removeprefix(".")
        return objectstore.CONTENT_TYPES.get(extension, "application/octet-stream")


def succeeded_images(obj: dict[str, Any]) -> list[Image]:
    """Every item whose image is stored, in the order of spec.items."""
    results = {r.get("id"): r for r in (obj.get("status") or {}).get("items") or []}
    found = []
    for item in obj["spec"]["items"]:
        result = results.get(item["id"]) or {}
        if result.get("state") == "Succeeded" and result.get("uri"):
            found.append(Image(item_id=item["id"], uri=str(result["uri"])))
    return found


def succeeded_image(obj: dict[str, Any], item_id: str) -> Image:
    """The item's image; 404 for an unknown item, 409 for one without an image yet."""
    if item_id not in {item["id"] for item in obj["spec"]["items"]}:
        raise problems.Problem(
            status=404, slug="item-not-found", detail=f"batch has no item {item_id!r}"
        )
    for result in (obj.get("status") or {}).get("items") or []:
        if result.get("id") == item_id:
            if result.get("state") == "Succeeded" and result.get("uri"):
                return Image(item_id=item_id, uri=str(result["uri"]))
            state = result.get("state", "Queued")
            break
    else:
        state = "Queued"
    raise problems.Problem(
        status=409, slug="image-not-ready", detail=f"item {item_id!r} is {state}, no image yet"
    )


def locate(found: services.Services, obj: dict[str, Any], image: Image) -> imagestores.Located:
    """The store and key of the image; 501 when the gateway has no store at all, 404 when
    the URI lies in none of them or outside the batch's own prefix."""
    stores = found.images
    if not stores.by_region and stores.fallback is None:
        raise problems.Problem(
            status=501,
            slug="images-not-served",
            detail="this gateway has no object store configured (settings: stores, images_dir)",
        )
    prefix = objectstore.batch_prefix(
        tenant=obj["spec"]["tenant"], batch_uid=obj["metadata"]["uid"]
    )
    region = (obj.get("status") or {}).get("region")
    located = stores.locate(uri=image.uri, region=region, prefix=prefix)
    if located is None:
        raise _missing(image)
    return located


async def presigned(located: imagestores.Located) -> str | None:
    """A presigned URL of the object, or None for a store without them."""
    assert located.presign_seconds is not None
    try:
        return await located.store.presign(key=located.key, seconds=located.presign_seconds)
    except base.StoreError as error:
        raise _unavailable(error) from error


async def stream(located: imagestores.Located, *, media_type: str) -> responses.Response:
    """The object's bytes streamed; the first chunk is read before answering, so that a
    missing object is a 404 and an unreachable store a 503, not a cut-off 200."""
    chunks = located.store.read(key=located.key)
    try:
        first = await anext(chunks, b"")
    except base.StoreError as error:
        if error.reason == "NotFound":
            raise problems.Problem(
                status=404, slug="image-not-found", detail="the image is no longer stored"
            ) from error
        raise _unavailable(error) from error
    return responses.StreamingResponse(_chain(first, chunks), media_type=media_type)


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


def _missing(image: Image) -> problems.Problem:
    return problems.Problem(
        status=404, slug="image-not-found", detail=f"image of item {image.item_id!r} is not stored"
    )


def _unavailable(error: base.StoreError) -> problems.Problem:
    # The store's name is the operator's business: logged, not shown to the tenant.
    logger.warning("object store call failed: %s", error)
    return problems.Problem(
        status=503,
        slug="store-unavailable",
        detail="the image store could not be reached; retry later",
        headers={"Retry-After": "5"},
    )
