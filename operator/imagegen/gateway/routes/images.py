"""Images of finished items, read from the volume the workers store them on."""

from __future__ import annotations

import mimetypes
import pathlib
import urllib.parse
import urllib.request
from typing import Any

import fastapi
from fastapi import responses

from imagegen.gateway import problems, services, translate
from imagegen.gateway.routes import batches

router = fastapi.APIRouter(tags=["batches"])


@router.get(
    translate.API_PREFIX + "/{batch_id}/images/{item_id}",
    response_class=responses.FileResponse,
    responses={
        200: {
            "description": "The image",
            "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
        },
        **problems.responses_doc(401, 404, 409, 429, 501),
    },
    summary="The stored image of one succeeded item",
)
async def get_image(
    batch_id: str, item_id: str, found: services.ServicesDep, tenant: services.Admitted
) -> responses.FileResponse:
    """The image file the worker stored for the item, as its status records it."""
    obj = await batches.find(found, tenant, batch_id)
    result = _item_result(obj, item_id)
    if result.get("state") != "Succeeded" or not result.get("uri"):
        state = result.get("state", "Queued")
        raise problems.Problem(
            status=409, slug="image-not-ready", detail=f"item {item_id!r} is {state}, no image yet"
        )
    root = found.settings.images_dir
    if root is None:
        raise problems.Problem(
            status=501,
            slug="images-not-served",
            detail="this gateway has no images_dir: images are on the workers' volume only",
        )
    path = _stored_path(root=root, uri=str(result["uri"]), batch_uid=obj["metadata"]["uid"])
    if path is None or not path.is_file():
        raise problems.Problem(
            status=404, slug="image-not-found", detail=f"image of item {item_id!r} is not stored"
        )
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return responses.FileResponse(path, media_type=media_type)


def _item_result(obj: dict[str, Any], item_id: str) -> dict[str, Any]:
    if item_id not in {item["id"] for item in obj["spec"]["items"]}:
        raise problems.Problem(
            status=404, slug="item-not-found", detail=f"batch has no item {item_id!r}"
        )
    for result in (obj.get("status") or {}).get("items") or []:
        if result.get("id") == item_id:
            found: dict[str, Any] = result
            return found
    return {}


def _stored_path(*, root: pathlib.Path, uri: str, batch_uid: str) -> pathlib.Path | None:
    """The file under root that the status's file:// uri names, or None when the uri points
    anywhere else: the status is the operator's, but the gateway trusts no path blindly."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "file":
        return None
    named = pathlib.PurePosixPath(urllib.request.url2pathname(parsed.path))
    if named.parent.name != batch_uid:
        return None
    path = (root / batch_uid / named.name).resolve()
    return path if path.is_relative_to(root.resolve()) else None
