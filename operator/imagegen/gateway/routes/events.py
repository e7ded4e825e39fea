"""Live status of one batch: a WebSocket, or Server-Sent Events for Accept:
text/event-stream. Both send the batch object now and on every change of the CR's status,
from a Kubernetes watch of that CR (never polling), and end after a terminal phase."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import fastapi
from fastapi import responses
from sse_starlette import sse
from starlette import background, websockets

from imagegen.gateway import (
    problems,
    schemas,
    services,
    streamauth,
    streamhub,
    tenants,
    translate,
)
from imagegen.gateway.routes import batches
from imagegen.metrics import gateway as catalogue

logger = logging.getLogger(__name__)

router = fastapi.APIRouter(tags=["batches"])

EVENTS_PATH = translate.API_PREFIX + "/{batch_id}/events"
_PING_SECONDS = 15
_POLICY_VIOLATION = 1008
_INTERNAL_ERROR = 1011
_TRY_AGAIN_LATER = 1013


async def updates(
    found: services.Services, tenant: tenants.TenantView, obj: dict[str, Any]
) -> AsyncGenerator[schemas.BatchObject, None]:
    """The batch now, then each time what the API shows of it changes; ends after a
    terminal phase or when the CR is deleted. Changes come from the namespace's shared
    watch (streamhub); streamhub.WatchEndedError when that watch ends."""
    last = translate.batch_object(obj)
    yield last
    if translate.is_terminal(obj):
        return
    name = obj["metadata"]["name"]
    async with found.hub.follow(namespace=tenant.namespace, name=name) as mailbox:
        # Read again once subscribed: a change between the first read and the
        # subscription reaches neither the first read nor the shared watch.
        current = await found.batches.get(namespace=tenant.namespace, name=name, tenant=tenant.name)
        event = ("MODIFIED", current) if current is not None else ("DELETED", {})
        seen = obj
        while True:
            kind, current = event
            if kind == "DELETED":
                return
            if not _older(current, than=seen):
                seen = current
                shown = translate.batch_object(current)
                if shown != last:
                    last = shown
                    yield shown
                if translate.is_terminal(current):
                    return
            event = await mailbox.get()


def _older(obj: dict[str, Any], *, than: dict[str, Any]) -> bool:
    """Whether obj is an older version than `than`: a shared watch that lags behind the
    read made at subscription must not take a stream back in time. resourceVersions are
    etcd revisions, compared as numbers when both are."""
    mine, theirs = (o.get("metadata", {}).get("resourceVersion", "") for o in (obj, than))
    return mine.isdigit() and theirs.isdigit() and int(mine) < int(theirs)


@router.get(
    EVENTS_PATH,
    response_class=responses.StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events, one `batch` event per change",
            "content": {"text/event-stream": {}},
        },
        **problems.responses_doc(401, 404, 406, 422, 429),
    },
    summary="Follow a batch with Server-Sent Events (WebSocket at the same path)",
)
async def batch_events_sse(
    batch_id: str,
    request: fastapi.Request,
    found: services.ServicesDep,
    tenant: streamauth.StreamAdmitted,
) -> sse.EventSourceResponse:
    """Each `batch` event's data is the batch object; the stream ends after a terminal phase.
    Authenticate with `Authorization: Bearer`, or (browsers) with `?ticket=` from
    POST .../events/tickets."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise problems.Problem(
            status=406,
            slug="not-acceptable",
            detail="send Accept: text/event-stream, or open a WebSocket here",
        )
    obj = await batches.find(found, tenant, batch_id)
    slot = found.streams.acquire(tenant.name)

    async def stream() -> AsyncIterator[dict[str, str]]:
        shown_updates = updates(found, tenant, obj)
        try:
            with catalogue.STREAMS.labels(tenant.name, "sse").track_inprogress():
                async with contextlib.aclosing(shown_updates):
                    async for shown in shown_updates:
                        yield {"event": "batch", "data": shown.model_dump_json()}
        except streamhub.WatchEndedError:
            # The stream ends; an EventSource reconnects, and its next subscription
            # starts the namespace's watch again.
            return
        finally:
            slot.release()

    # The background task frees the slot of a stream whose body never started.
    return sse.EventSourceResponse(
        stream(), ping=_PING_SECONDS, background=background.BackgroundTask(slot.release)
    )


@router.websocket(EVENTS_PATH)
async def batch_events_websocket(websocket: fastapi.WebSocket, batch_id: str) -> None:
    """A text message with the batch object per change; closed (1000) after a terminal phase."""
    found = services.services(websocket)
    try:
        tenant = await streamauth.stream_tenant(websocket, found, batch_id)
        obj = await batches.find(found, tenant, batch_id)
        slot = found.streams.acquire(tenant.name)
    except problems.Problem as problem:
        await _deny(websocket, problem)
        return
    except services.BACKEND_ERRORS as error:
        logger.warning("WEBSOCKET %s: backend call failed: %r", websocket.url.path, error)
        await _deny(websocket, problems.backend_unavailable())
        return
    try:
        await websocket.accept()
        await _stream(websocket, found, tenant, obj)
    finally:
        slot.release()


async def _stream(
    websocket: fastapi.WebSocket,
    found: services.Services,
    tenant: tenants.TenantView,
    obj: dict[str, Any],
) -> None:
    with catalogue.STREAMS.labels(tenant.name, "websocket").track_inprogress():
        sender = asyncio.create_task(_send_updates(websocket, updates(found, tenant, obj)))
        receiver = asyncio.create_task(_until_disconnect(websocket))
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(
                asyncio.CancelledError,
                websockets.WebSocketDisconnect,
                streamhub.WatchEndedError,
                *services.BACKEND_ERRORS,
            ):
                await task
        if sender in done:
            with contextlib.suppress(RuntimeError, websockets.WebSocketDisconnect):
                await websocket.close(code=close_code(sender.exception()))


def close_code(error: BaseException | None) -> int:
    """1000 after a terminal phase; 1011 when a bug ended the namespace's watch; else the
    backend's outage (a read, or the watch giving up): "try again later"."""
    if error is None:
        return 1000
    if isinstance(error, streamhub.WatchEndedError) and not error.gave_up:
        return _INTERNAL_ERROR
    return _TRY_AGAIN_LATER


async def _send_updates(
    websocket: fastapi.WebSocket, stream: AsyncGenerator[schemas.BatchObject, None]
) -> None:
    # aclosing: a client that leaves must end the Kubernetes watch now, not at GC time.
    async with contextlib.aclosing(stream):
        async for shown in stream:
            await websocket.send_text(shown.model_dump_json())


async def _until_disconnect(websocket: fastapi.WebSocket) -> None:
    # The client sends nothing; reading is how a closed connection is noticed.
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _deny(websocket: fastapi.WebSocket, problem: problems.Problem) -> None:
    """Refuse the handshake with the problem as an HTTP answer where the server can send
    one, else close with 1008 and the detail as the reason."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(problem.response())
    else:
        retry = problem.status == 429 or problem.status >= 500
        code = _TRY_AGAIN_LATER if retry else _POLICY_VIOLATION
        await websocket.close(code=code, reason=problem.detail[:120])
