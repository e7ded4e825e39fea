"""Probes and metrics: no authentication, no rate limit."""

from __future__ import annotations

import asyncio

import fastapi
import redis.exceptions
from fastapi import responses

from imagegen.gateway import metrics, services

router = fastapi.APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness: the process answers and every loop it runs is alive",
    responses={503: {"description": "A loop has ended; the body names it"}},
)
async def healthz(request: fastapi.Request) -> responses.JSONResponse:
    # A dead loop leaves a part of the API stale for good: restarting is the remedy.
    dead = request.app.state.dead_loops()
    if dead:
        return responses.JSONResponse({"status": "dead loops", "dead": dead}, status_code=503)
    return responses.JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: key index and Tenants loaded, watches working, Redis answering",
    responses={503: {"description": "Not ready; the body says what is missing"}},
)
async def readyz(request: fastapi.Request) -> responses.JSONResponse:
    found = services.services(request)
    missing = [name for name, ready in request.app.state.synced().items() if not ready]
    missing += request.app.state.dead_loops()
    missing += request.app.state.broken_watches()
    try:
        async with asyncio.timeout(found.settings.redis.command_timeout_seconds):
            await found.redis.ping()
    except (redis.exceptions.RedisError, OSError, TimeoutError):
        missing.append("redis")
    if missing:
        return responses.JSONResponse({"status": "not ready", "missing": missing}, status_code=503)
    return responses.JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_class=responses.PlainTextResponse,
    summary="Prometheus metrics",
)
async def prometheus_metrics() -> responses.Response:
    body, content_type = metrics.exposition()
    return responses.Response(body, media_type=content_type)
