"""A batch's images as a whole: the list with a link to each, and one zip of them all,
streamed as it is read from the store (never held in memory whole)."""

from __future__ import annotations

import datetime
import logging
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import fastapi
from fastapi import responses

from imagegen.gateway import imagefetch, imagestores, problems, schemas, services, translate
from imagegen.gateway.routes import batches
from imagegen.storage import base

logger = logging.getLogger(__name__)

router = fastapi.APIRouter(tags=["batches"])


class ImageEntry(schemas.ApiModel):
    """One stored image."""

    id: str
    """The item id."""
    file_name: str
    """`<item id>.<ext>`, as in the zip."""
    content_type: str
    image: str
    """Path of the image (302 to a presigned URL, or the bytes)."""


class ImageList(schemas.ApiModel):
    """The batch's stored images, in the order of its items."""

    data: list[ImageEntry]
    archive: str
    """Path of a zip of them all."""


@router.get(
    translate.API_PREFIX + "/{batch_id}/images",
    response_model=ImageList,
    responses=problems.responses_doc(401, 404, 429),
    summary="The batch's stored images, with a link to each",
)
async def list_images(
    batch_id: str, found: services.ServicesDep, tenant: services.Admitted
) -> ImageList:
    """Every succeeded item's image, so far (a running batch lists what is done)."""
    obj = await batches.find(found, tenant, batch_id)
    base_path = f"{translate.API_PREFIX}/{batch_id}"
    return ImageList(
        data=[
            ImageEntry(
                id=image.item_id,
                file_name=image.file_name,
                content_type=image.content_type,
                image=f"{base_path}/images/{image.item_id}",
            )
            for image in imagefetch.succeeded_images(obj)
        ],
        archive=f"{base_path}/images.zip",
    )


@router.get(
    translate.API_PREFIX + "/{batch_id}/images.zip",
    response_class=responses.StreamingResponse,
    responses={
        200: {"description": "A zip of every stored image", "content": {"application/zip": {}}},
        **problems.responses_doc(401, 404, 409, 429, 501, 503),
    },
    summary="A zip of the batch's stored images, streamed",
)
async def download_zip(
    batch_id: str, found: services.ServicesDep, tenant: services.Admitted
) -> responses.StreamingResponse:
    """The images as `<item id>.<ext>` entries, stored uncompressed (they are compressed
    images already), streamed one chunk at a time from the store."""
    obj = await batches.find(found, tenant, batch_id)
    images = imagefetch.succeeded_images(obj)
    if not images:
        raise problems.Problem(
            status=409, slug="no-images", detail=f"batch {batch_id!r} has no stored image yet"
        )
    located = [(image, imagefetch.locate(found, obj, image)) for image in images]
    return responses.StreamingResponse(
        zip_stream(located, when=_completed(obj)),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{batch_id}.zip"'},
    )


async def zip_stream(
    located: list[tuple[imagefetch.Image, imagestores.Located]], *, when: datetime.datetime
) -> AsyncIterator[bytes]:
    """A zip of the images, yielded as it is written: each piece as the store hands it
    over, so memory holds one read at a time, never the archive."""
    sink = _Sink()
    stamp = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for image, place in located:
            entry = zipfile.ZipInfo(image.file_name, date_time=stamp)
            try:
                with archive.open(entry, mode="w") as member:
                    async for chunk in place.store.read(key=place.key):
                        member.write(chunk)
                        if taken := sink.take():
                            yield taken
            except base.StoreError as error:
                # Headers are gone: the client sees a cut-off zip, which fails to open,
                # rather than one silently short of an image.
                logger.warning("zip of %s cut off at %s: %s", image.uri, image.item_id, error)
                raise
            if taken := sink.take():
                yield taken
    yield sink.take()


def _completed(obj: dict[str, Any]) -> datetime.datetime:
    raw = (obj.get("status") or {}).get("completedAt") or obj["metadata"].get("creationTimestamp")
    try:
        return datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return datetime.datetime(1980, 1, 1, tzinfo=datetime.UTC)


class _Sink:
    """A write-only file for zipfile: what it writes is taken out as it comes. With no
    seek or tell, zipfile writes each entry's sizes after its data (a data descriptor),
    so nothing is ever rewritten."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered here beyond what `take` hands out."""

    def close(self) -> None:
        """Nothing to close: the parts are taken by the response."""

    def take(self) -> bytes:
        """Everything written since the last take."""
        taken = b"".join(self._parts)
        self._parts.clear()
        return taken
