"""What a request handler needs, assembled once per process by the app's lifespan, and
the FastAPI dependencies that authenticate and rate-limit a request."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Annotated

import fastapi
import httpx2
import lightkube
import redis.asyncio
import redis.exceptions
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegen import logs, ratelimit, redisconn
from imagegen.gateway import (
    batchstore,
    idempotency,
    imagestores,
    keyindex,
    metrics,
    problems,
    ratelimiting,
    settings,
    streamcaps,
    streamhub,
    tenants,
    tickets,
)
from imagegen.metrics import gateway as catalogue

_HEADERS_STATE = "ratelimit_headers"

BACKEND_ERRORS: tuple[type[Exception], ...] = (
    lightkube.ApiError,
    httpx2.HTTPError,
    redis.exceptions.RedisError,
)
"""Kubernetes or Redis failing to answer: a 503 with Retry-After, never a 500."""


@dataclasses.dataclass(kw_only=True)
class Services:
    """The process's collaborators."""

    settings: settings.GatewaySettings
    keys: keyindex.KeyIndex
    tenants: tenants.TenantDirectory
    batches: batchstore.BatchStore
    limiter: ratelimit.RateLimiter
    idempotency: idempotency.IdempotencyStore
    redis: redisconn.Client
    images: imagestores.ImageStores
    """Each region's object store, to serve images from."""
    tickets: tickets.TicketStore
    hub: streamhub.WatchHub
    """One shared watch per namespace for every stream of a batch in it."""
    streams: streamcaps.StreamCaps


def services(request: fastapi.requests.HTTPConnection) -> Services:
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, fastapi.Depends(services)]

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="imagegen"'}


async def authenticate(
    connection: fastapi.requests.HTTPConnection, found: ServicesDep
) -> tenants.TenantView:
    """The tenant of the request's `Authorization: Bearer igk_...` key, or 401. From here
    on the request's log lines and metrics carry the tenant.

    Async although it awaits nothing: FastAPI runs a sync dependency in a thread, whose
    log fields would not reach the handler's lines."""
    header = connection.headers.get("authorization")
    if not header:
        raise problems.Problem(
            status=401,
            slug="unauthenticated",
            detail="missing Authorization header",
            headers=_UNAUTHORIZED,
        )
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise problems.Problem(
            status=401,
            slug="unauthenticated",
            detail="Authorization must be 'Bearer <API key>'",
            headers=_UNAUTHORIZED,
        )
    # Host time, not Redis TIME: a key's expiry ends a day-long grace that the operator
    # stamped with its own clock; a skew moves that end by itself (README, "One clock").
    name = found.keys.tenant_of(key.strip(), now=datetime.datetime.now(datetime.UTC))
    refusal = found.tenants.refusal(name) if name else None
    if refusal is not None:
        raise problems.Problem(
            status=403,
            slug="tenant-not-ready",
            detail=f"tenant {name} is not served until its spec is fixed: {refusal}",
        )
    tenant = found.tenants.get(name) if name else None
    if tenant is None:
        raise problems.Problem(
            status=401,
            slug="unauthenticated",
            detail="unknown or expired API key",
            headers=_UNAUTHORIZED,
        )
    bind(connection, tenant)
    return tenant


def bind(connection: fastapi.requests.HTTPConnection, tenant: tenants.TenantView) -> None:
    """From here on the request's log lines and metrics carry the tenant."""
    setattr(connection.state, metrics.TENANT_STATE, tenant.name)
    logs.bind_rest_of_task(tenant=tenant.name)


Tenant = Annotated[tenants.TenantView, fastapi.Depends(authenticate)]


async def charge(
    connection: fastapi.requests.HTTPConnection,
    found: Services,
    tenant: tenants.TenantView,
    *,
    images: int = 0,
) -> None:
    """Decide the tenant's limits for this request (and `images` items); 429 when refused.
    Either way the response carries the rate-limit headers."""
    if images > tenant.images_per_minute:
        raise problems.Problem(
            status=422,
            slug="validation",
            detail=f"{images} items exceed the tenant's quota of "
            f"{tenant.images_per_minute} images per minute",
            errors=[problems.field_error(["items"], "more items than the per-minute quota")],
        )
    decision = await found.limiter.decide(ratelimiting.limits(tenant, images=images))
    headers = ratelimiting.headers(decision)
    connection.state.ratelimit_headers = headers
    catalogue.RATE_LIMIT_REMAINING.labels(tenant.name).set(decision.outcomes[0].remaining)
    if not decision.admitted:
        catalogue.RATE_LIMITED.labels(tenant.name).inc()
        raise problems.Problem(
            status=429,
            slug="rate-limited",
            detail=f"rate limit exceeded; retry after {headers['Retry-After']} s",
            headers=headers,
        )


async def admit(
    connection: fastapi.requests.HTTPConnection, found: ServicesDep, tenant: Tenant
) -> tenants.TenantView:
    """Authenticate, then charge one request."""
    await charge(connection, found, tenant)
    return tenant


Admitted = Annotated[tenants.TenantView, fastapi.Depends(admit)]


class RateLimitHeaders:
    """ASGI middleware: add the rate-limit headers decided for a request to its response,
    whatever answered it (the route, a problem, a validation error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            decided = scope.get("state", {}).get(_HEADERS_STATE)
            if message["type"] == "http.response.start" and decided:
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in decided.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
