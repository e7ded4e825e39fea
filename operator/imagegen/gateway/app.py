"""The gateway's FastAPI app: routes, middleware, error handling, and the lifespan that
connects to Kubernetes and Redis and keeps the key index and Tenants current."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import fastapi
import httpx2
import lightkube
from fastapi import exceptions, responses
from lightkube.resources import core_v1
from starlette import exceptions as starlette_exceptions

from imagegen import ratelimit, redisconn, reflector, resources, supervision
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
    # No loop runs before the lifespan starts them; it replaces this with its supervisor's.
    app.state.dead_loops = list
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
        kube = _kube_client(config)
        store = redisconn.connect(
            config.redis,
            credentials=redisconn.local_credentials(config.redis, password=config.redis_password),
        )
        keys, directory = keyindex.KeyIndex(), tenants.TenantDirectory()
        image_stores = contextlib.AsyncExitStack()
        region_stores = await image_stores.enter_async_context(imagestores.opened(config))
        watchers = [
            reflector.Reflector(
                client=kube,
                resource=core_v1.ConfigMap,
                what="API key index",
                sink=keys,
                namespace=config.operator_namespace,
                labels={keyindex.INDEX_LABEL: "true"},
                watch_seconds=config.timeouts.watch_server_seconds,
            ),
            reflector.Reflector(
                client=kube,
                resource=resources.Tenant,
                what="Tenants",
                sink=directory,
                watch_seconds=config.timeouts.watch_server_seconds,
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
            hub=streamhub.WatchHub(client=kube, watch_seconds=config.timeouts.watch_server_seconds),
            streams=streamcaps.StreamCaps(
                per_tenant=config.max_streams_per_tenant, per_process=config.max_streams
            ),
        )
        app.state.synced = lambda: {w.what: w.synced.is_set() for w in watchers}
        loops = supervision.Supervisor()
        app.state.dead_loops = loops.dead
        for watcher in watchers:
            loops.start(watcher.what, watcher.run())
        webhooks = _webhook_service(config, kube=kube, redis=store)
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
            await image_stores.aclose()

    return lifespan


def _kube_client(config: settings.GatewaySettings) -> lightkube.AsyncClient:
    kube_config = (
        lightkube.KubeConfig.from_file(config.kubeconfig)
        if config.kubeconfig
        else lightkube.KubeConfig.from_service_account()
    )
    return lightkube.AsyncClient(
        config=kube_config,
        timeout=httpx2.Timeout(
            config.timeouts.kube_request_seconds, connect=config.timeouts.kube_connect_seconds
        ),
        field_manager=f"{meta.GROUP}/gateway",
        # The kubeconfig names the server; an ambient HTTPS_PROXY must not reroute it.
        trust_env=False,
    )


def _webhook_service(
    config: settings.GatewaySettings, *, kube: lightkube.AsyncClient, redis: redisconn.Client
) -> service.WebhookService | None:
    if not config.webhooks_enabled:
        return None
    return service.WebhookService(kube=kube, redis=redis, settings=config)


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
