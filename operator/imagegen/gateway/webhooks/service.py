"""The webhook service the gateway runs: the producer and the dispatcher, started and
stopped together."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from typing import Protocol

import lightkube

from imagegen import redisconn
from imagegen.gateway.webhooks import dispatcher, producer, secretstore, ssrf
from imagegen.kube import watching

logger = logging.getLogger(__name__)

STOP_SECONDS = 10.0
"""How long stop() waits for the loops to end (an attempt in flight included)."""


class Settings(Protocol):
    """What the service needs of the gateway's settings."""

    @property
    def webhook_allowlist(self) -> list[str]:
        """Hosts, IPs and CIDRs webhooks may reach although they are not public."""

    @property
    def operator_namespace(self) -> str:
        """Where the operator publishes the tenants' signing secrets."""


class WebhookService:
    """Turns ImageBatch status changes into signed webhook deliveries."""

    def __init__(
        self,
        *,
        kube: lightkube.AsyncClient,
        watches: lightkube.AsyncClient,
        redis: redisconn.Client,
        settings: Settings,
        watch: watching.Options = producer.WATCH,
        options: dispatcher.Options | None = None,
        resolver: ssrf.Resolver | None = None,
        consumer: str | None = None,
    ) -> None:
        self._watches = watches
        self._watch = watch
        self._redis = redis
        self._dispatcher = dispatcher.Dispatcher(
            redis=redis,
            secrets=secretstore.SigningSecrets(kube=kube, namespace=settings.operator_namespace),
            allowlist=settings.webhook_allowlist,
            # Unique per process: a restarted gateway is a new consumer, and the entries
            # the old one left pending are claimed once their lease runs out.
            consumer=consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
            options=options,
            resolver=resolver,
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start producing and dispatching in the background."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(
                producer.run(kube=self._watches, redis=self._redis, options=self._watch),
                name="webhook producer",
            ),
            asyncio.create_task(self._dispatcher.run(), name="webhook dispatcher"),
        ]

    def loops(self) -> dict[str, asyncio.Task[None]]:
        """The running loops by name, for the gateway to watch."""
        return {task.get_name(): task for task in self._tasks}

    async def stop(self) -> None:
        """Stop both loops; an attempt in flight is abandoned and delivered again later.
        Bounded: a loop that does not end in STOP_SECONDS is logged and left behind."""
        if not self._tasks:
            return
        for task in self._tasks:
            task.cancel()
        _, running = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
        for task in running:
            logger.error("webhook service loop %s did not stop in %ss", task, STOP_SECONDS)
        self._tasks = []
