"""Assemble and run the Kopf operator: registry, login, settings, liveness, signals."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from imagegen.controller import login, settings

logger = logging.getLogger(__name__)


def build_registry(*, config: settings.OperatorConfig) -> kopf.OperatorRegistry:
    """A registry holding the operator's handlers, independent of Kopf's global one."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def log_in(**_: Any) -> kopf.ConnectionInfo | None:
        if config.kubeconfig is not None:
            return login.connection_from_kubeconfig(path=config.kubeconfig)
        return kopf.login_with_service_account(**_)

    return registry


async def run(*, config: settings.OperatorConfig) -> None:
    """Run the operator until SIGTERM or SIGINT; Kopf installs the signal handlers."""
    logger.info(
        "imagegen operator starting (kubeconfig=%s, liveness=%s)",
        config.kubeconfig or "in-cluster",
        config.liveness_endpoint,
    )
    await kopf.operator(
        registry=build_registry(config=config),
        settings=settings.kopf_settings(config=config),
        clusterwide=True,
        standalone=True,
        liveness_endpoint=config.liveness_endpoint,
    )
    logger.info("imagegen operator stopped")


def main(*, config: settings.OperatorConfig) -> None:
    """Blocking entry point used by `imagegen operator`."""
    asyncio.run(run(config=config))
