"""The image of one finished item, from the object store of the batch's region: a 302 to
a short-lived presigned URL (the default) or the bytes streamed through the gateway."""

from __future__ import annotations

import fastapi
from fastapi import responses

from imagegen.gateway import imagefetch, problems, services, translate
from imagegen.gateway.routes import batches

router = fastapi.APIRouter(tags=["batches"])


@router.get(
    translate.API_PREFIX + "/{batch_id}/images/{item_id}",
    response_class=responses.StreamingResponse,
    responses={
        200: {
            "description": "The image (streamed delivery, or a folder store)",
            "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
        },
        302: {"description": "Redirect to a short-lived presigned URL of the image"},
        **problems.responses_doc(401, 404, 409, 429, 501, 503),
    },
    summary="The stored image of one succeeded item",
)
async def get_image(
    batch_id: str, item_id: str, found: services.ServicesDep, tenant: services.Admitted
) -> responses.Response:
    """The image the worker stored for the item, as its status records it."""
    obj = await batches.find(found, tenant, batch_id)
    image = imagefetch.succeeded_image(obj, item_id)
    located = imagefetch.locate(found, obj, image)
    if found.settings.image_delivery == "redirect" and located.presign_seconds is not None:
        url = await imagefetch.presigned(located)
        if url is not None:
            return responses.RedirectResponse(url, status_code=302)
    return await imagefetch.stream(located, media_type=image.content_type)
