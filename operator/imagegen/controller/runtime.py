"""Assemble and run the Kopf operator: clients, registry, handlers, sweep, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import kopf
import lightkube

from imagegen import regions, supervision
from imagegen.api import operatorconfig
from imagegen.controller import (
    batches,
    batchevents,
    batchindex,
    capacity,
    cleanup,
    livecache,
    login,
    observe,
    relocation,
    reporter,
    retention,
    secretaccess,
    settings,
    sweep,
    tenants,
)
from imagegen.kube import clients, watching
from imagegen.metrics import operator as metrics
from imagegen.metrics import serve

logger = logging.getLogger(__name__)


def build_registry(
    *,
    options: settings.OperatorOptions,
    tenant_context: tenants.Context,
    batch_context: batches.Context,
    loops: supervision.Supervisor,
) -> kopf.OperatorRegistry:
    """A registry holding the operator's handlers, independent of Kopf's global one."""
    registry = kopf.OperatorRegistry()

    @kopf.on.cleanup(registry=registry)
    async def stop_loops(**_: Any) -> None:
        # Before Kopf cancels every task created since it started (and re-raises what
        # they ended with): the loops' own children are among those, and a loop whose
        # child Kopf cancelled would end as if it had died.
        await loops.stop()

    @kopf.on.login(registry=registry)
    def log_in(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if options.kubeconfig is not None:
            return login.connection_from_kubeconfig(path=options.kubeconfig)
        return kopf.login_with_service_account(**kwargs)

    tenants.register(registry=registry, context=tenant_context)
    batches.register(registry=registry, context=batch_context)
    return registry


@contextlib.asynccontextmanager
async def management_client(
    *, options: settings.OperatorOptions
) -> AsyncIterator[lightkube.AsyncClient]:
    """The operator's own client of the management cluster (namespaces, Secrets)."""
    client = clients.async_client(
        kubeconfig=options.kubeconfig,
        request_seconds=options.timeouts.request_seconds,
        connect_seconds=options.timeouts.connect_seconds,
    )
    try:
        yield client
    finally:
        await client.close()


async def run(*, options: settings.OperatorOptions, config: operatorconfig.OperatorConfig) -> None:
    """Run the operator until SIGTERM or SIGINT; Kopf installs the signal handlers."""
    logger.info(
        "imagegen operator starting (kubeconfig=%s, regions=%s, liveness=%s, metrics=%s)",
        options.kubeconfig or "in-cluster",
        ", ".join(region.name for region in config.regions),
        options.liveness_endpoint,
        options.metrics_endpoint,
    )
    async with management_client(options=options) as management:
        registry = await regions.connect(config=config, management=management)
        # Half a drift interval: a hand edit is seen within one and a half intervals.
        caches = {
            name: livecache.LiveCache(region=client, max_age=config.drift_check_seconds / 2)
            for name, client in registry.clients.items()
        }
        pods, pod_feeds = capacity.watchers(
            registry=registry,
            namespace=config.workers.namespace,
            options=watching.Options(
                server_timeout_seconds=options.timeouts.watch_server_seconds,
                inactivity_seconds=options.timeouts.watch_inactivity_seconds,
            ),
        )
        tenant_context = tenants.Context(
            config=config,
            registry=registry,
            caches=caches,
            pods=pods,
            management=management,
            operator_subject=await secretaccess.identity(management),
        )
        index = batchindex.Index()
        poster = batchevents.Poster(management=management, level=options.event_level)
        batch_context = batches.Context(
            registry=registry,
            management=management,
            index=index,
            poster=poster,
            operator_namespace=config.operator_namespace,
        )
        loops = supervision.Supervisor()
        for name, each in reporter.reporters(
            registry=registry,
            index=index,
            mover=relocation.Mover(registry=registry, management=management, poster=poster),
            settings=reporter.Settings(failover_after_seconds=config.failover_after_seconds),
        ).items():
            loops.start(f"reporter {name}", each.run())
        loops.start(
            "drift sweep",
            sweep.run_forever(
                config=config, registry=registry, caches=caches, management=management
            ),
        )
        loops.start("queue sampling", observe.sample_queues_forever(registry=registry))
        for feed in pod_feeds:
            loops.start("worker pods", feed.run())
        loops.start(
            "retention",
            retention.run_forever(
                management=management, interval_seconds=config.retention_check_seconds
            ),
        )
        loops.start(
            "cleanup sweep",
            cleanup.sweep_forever(
                registry=registry,
                management=management,
                namespace=config.operator_namespace,
                interval_seconds=config.cleanup_sweep_seconds,
            ),
        )
        try:
            async with _metrics_served(options=options):
                await kopf.operator(
                    registry=build_registry(
                        options=options,
                        tenant_context=tenant_context,
                        batch_context=batch_context,
                        loops=loops,
                    ),
                    settings=settings.kopf_settings(options=options),
                    clusterwide=True,
                    standalone=True,
                    liveness_endpoint=options.liveness_endpoint,
                    # A loop that dies stops the operator, and the pod is restarted.
                    stop_flag=loops.died,
                )
            dead = loops.dead()
        finally:
            await loops.stop()
            await registry.close()
    if dead:
        raise LoopEndedError(f"operator loops ended: {', '.join(dead)}")
    logger.info("imagegen operator stopped")


class LoopEndedError(RuntimeError):
    """A long-running loop of the operator ended: the process exits with an error."""


def _metrics_served(
    *, options: settings.OperatorOptions
) -> contextlib.AbstractAsyncContextManager[None]:
    if options.metrics_endpoint is None:
        return contextlib.nullcontext()
    return serve.serving(endpoint=options.metrics_endpoint, registry=metrics.REGISTRY)


def main(*, options: settings.OperatorOptions, config: operatorconfig.OperatorConfig) -> None:
    """Blocking entry point used by `imagegen operator`."""
    asyncio.run(run(options=options, config=config))
