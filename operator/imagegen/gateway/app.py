"""The gateway's FastAPI app: routes, middleware, error handling, and the lifespan that
connects to Kubernetes and Redis and keeps the key index and Tenants current."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable

import fastapi
import lightkube
from fastapi import exceptions, responses
from lightkube.resources import core_v1
from starlette import exceptions as starlette_exceptions

from imagegen import ratelimit, redisconn, resources, supervision
from imagegen.api import meta
from imagegen.gateway import (
    batchstore,
    bodylimit,
    cors,
    idempotency,
    imagestores,
    keyindex,
    metrics,
    openapi,
    problems,
    requestcontext,
    services,
    settings,
    streamcaps,
    streamhub,
    tenants,
    tickets,
)
from imagegen.gateway.routes import batches, batchimages, events, health, images, ui
from imagegen.gateway.routes import tickets as ticket_routes
from imagegen.gateway.webhooks import service
from imagegen.kube import clients, reflector, watching

logger = logging.getLogger(__name__)

TITLE = "imagegen batch API"
VERSION = "v1"


def create_app(config: settings.GatewaySettings) -> fastapi.FastAPI:
    """The app; it connects to nothing until it is started (the lifespan)."""
    app = fastapi.FastAPI(
        title=TITLE,
        version=VERSION,
        description="Submit image batches, follow them live, fetch the images.",
        lifespan=_lifespan(config),
        docs_url=None,
        redoc_url=None,
    )
    # No loop or watch runs before the lifespan starts them; it replaces these with its own.
    app.state.dead_loops = app.state.broken_watches = list
    for router in (
        batches.router,
        events.router,
        ticket_routes.router,
        images.router,
        batchimages.router,
        health.router,
    ):
        app.include_router(router)
    ui.mount(app)
    app.add_exception_handler(problems.Problem, _problem)
    app.add_exception_handler(exceptions.RequestValidationError, _invalid_request)
    app.add_exception_handler(starlette_exceptions.HTTPException, _http_error)
    for unavailable in services.BACKEND_ERRORS:
        app.add_exception_handler(unavailable, _dependency_failed)
    # A bug still answers in the one error shape; Starlette logs the traceback.
    app.add_exception_handler(Exception, _server_error)
    # Added last = outermost: metrics see every answer, the headers reach every answer.
    app.add_middleware(services.RateLimitHeaders)
    app.add_middleware(bodylimit.BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(metrics.RequestMetrics)
    cors.add(app, origins=config.cors_origins)
    # Outermost: every line logged for a request, the metrics middleware's too, has its id.
    app.add_middleware(requestcontext.RequestContext)
    app.openapi = openapi.generator(app)  # type: ignore[method-assign]
    return app


def _lifespan(
    config: settings.GatewaySettings,
) -> Callable[[fastapi.FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: fastapi.FastAPI) -> AsyncIterator[None]:
        kube, watches = _kube_clients(config)
        watch = _watch_options(config)
        store = redisconn.connect(
            config.redis,
            credentials=redisconn.local_credentials(config.redis, password=config.redis_password),
        )
        keys, directory = keyindex.KeyIndex(), tenants.TenantDirectory()
        image_stores = contextlib.AsyncExitStack()
        region_stores = await image_stores.enter_async_context(imagestores.opened(config))
        watchers = [
            reflector.Reflector(
                client=watches,
                resource=core_v1.ConfigMap,
                what="API key index",
                sink=keys,
                namespace=config.operator_namespace,
                labels={keyindex.INDEX_LABEL: "true"},
                options=watch,
            ),
            reflector.Reflector(
                client=watches,
                resource=resources.Tenant,
                what="Tenants",
                sink=directory,
                options=watch,
            ),
        ]
        app.state.services = services.Services(
            settings=config,
            keys=keys,
            tenants=directory,
            batches=batchstore.BatchStore(client=kube),
            limiter=ratelimit.RateLimiter(redis=store),
            idempotency=idempotency.IdempotencyStore(redis=store),
            redis=store,
            images=region_stores,
            tickets=tickets.TicketStore(redis=store, ttl_seconds=config.stream_ticket_seconds),
            hub=streamhub.WatchHub(
                client=watches,
                options=dataclasses.replace(watch, give_up_after=streamhub.GIVE_UP_AFTER),
            ),
            streams=streamcaps.StreamCaps(
                per_tenant=config.max_streams_per_tenant, per_process=config.max_streams
            ),
        )
        app.state.synced = lambda: {w.what: w.synced.is_set() for w in watchers}
        app.state.broken_watches = lambda: (
            [w.what for w in watchers if w.health.broken()]
            + (["stream watches"] if app.state.services.hub.broken() else [])
        )
        loops = supervision.Supervisor()
        app.state.dead_loops = loops.dead
        for watcher in watchers:
            loops.start(watcher.what, watcher.run())
        webhooks = _webhook_service(config, kube=kube, watches=watches, redis=store)
        try:
            if webhooks is not None:
                await webhooks.start()
                for name, task in webhooks.loops().items():
                    loops.watch(name, task)
            yield
        finally:
            loops.stopping()
            if webhooks is not None:
                await webhooks.stop()
            await loops.stop()
            await app.state.services.hub.close()
            await store.aclose()
            await kube.close()
            await watches.close()
            await image_stores.aclose()

    return lifespan


PROCESS_WATCHES = 3
"""Watches the process holds whatever the streams: the key index, the Tenants and the
webhook producer's."""


def _kube_clients(
    config: settings.GatewaySettings,
) -> tuple[lightkube.AsyncClient, lightkube.AsyncClient]:
    """(requests, watches): two connection pools, so that watches, which hold a connection
    each for as long as they run, never take one a request needs. Each stream's namespace
    holds one watch at most, so the watch pool has room for every stream the process
    allows and its own watches: a stream never waits for a connection either."""
    requests, watches = (
        clients.async_client(
            kubeconfig=config.kubeconfig,
            request_seconds=config.timeouts.kube_request_seconds,
            connect_seconds=config.timeouts.kube_connect_seconds,
            field_manager=f"{meta.GROUP}/gateway",
            max_connections=size,
        )
        for size in (config.kube_connections, config.max_streams + PROCESS_WATCHES)
    )
    return requests, watches


def _watch_options(config: settings.GatewaySettings) -> watching.Options:
    return watching.Options(
        server_timeout_seconds=config.timeouts.watch_server_seconds,
        inactivity_seconds=config.timeouts.watch_inactivity_seconds,
    )


def _webhook_service(
    config: settings.GatewaySettings,
    *,
    kube: lightkube.AsyncClient,
    watches: lightkube.AsyncClient,
    redis: redisconn.Client,
) -> service.WebhookService | None:
    if not config.webhooks_enabled:
        return None
    return service.WebhookService(
        kube=kube, watches=watches, redis=redis, settings=config, watch=_watch_options(config)
    )


async def _problem(_: fastapi.Request, error: Exception) -> responses.Response:
    assert isinstance(error, problems.Problem)
    return error.response()


async def _invalid_request(_: fastapi.Request, error: Exception) -> responses.Response:
    assert isinstance(error, exceptions.RequestValidationError)
    errors = [
        problems.field_error([str(part) for part in line["loc"]], str(line["msg"]))
        for line in error.errors()
    ]
    fields = ", ".join(e.field for e in errors)
    return problems.Problem(
        status=422, slug="validation", detail=f"invalid parameters: {fields}", errors=errors
    ).response()


async def _http_error(_: fastapi.Request, error: Exception) -> responses.Response:
    assert isinstance(error, starlette_exceptions.HTTPException)
    return problems.Problem(
        status=error.status_code, detail=str(error.detail), headers=error.headers
    ).response()


async def _dependency_failed(
    connection: fastapi.requests.HTTPConnection, error: Exception
) -> responses.Response:
    # The cause is logged for operators; the client learns only that we could not answer.
    # A WebSocket reaches here too, and it has no method.
    method = connection.scope.get("method", "WEBSOCKET")
    logger.warning("%s %s: backend call failed: %r", method, connection.url.path, error)
    return problems.backend_unavailable().response()


async def _server_error(_: fastapi.Request, error: Exception) -> responses.Response:
    return problems.Problem(status=500, detail="internal error; it has been logged").response()
