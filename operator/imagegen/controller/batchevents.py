"""Events on ImageBatches posted from outside Kopf's handlers.

The region reporters run beside Kopf, not inside a handler, where Kopf's own event queue
(`kopf.info`, `kopf.warn`) is not available; they post through here, with the same
component name and the same level rule: Normal Events only when the operator's event level
is INFO or lower (by default WARNING: a person sees failovers and lost queue data, not
every phase change). Posting is best effort: an Event that cannot be written is logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging

import httpx2
import lightkube
from lightkube.models import core_v1 as core_models
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen import supervision
from imagegen.api import imagebatch, meta
from imagegen.controller import reporting, settings

logger = logging.getLogger(__name__)

POST_SECONDS = 5.0
"""Bound on posting one Event: a slow apiserver must not hold a reporter long."""
MAX_MESSAGE_LENGTH = 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class Poster:
    """Posts Events on batches through the management client."""

    management: lightkube.AsyncClient
    level: int = logging.WARNING
    """The operator's event level (OperatorOptions.event_level)."""

    async def post(self, *, batch: imagebatch.ImageBatch, event: reporting.Event) -> None:
        """Post `event` on the batch, unless the level leaves Normal Events out."""
        if event.type == "Normal" and self.level > logging.INFO:
            return
        now = datetime.datetime.now(datetime.UTC)
        name, namespace = batch.metadata.name, batch.metadata.namespace
        try:
            async with asyncio.timeout(POST_SECONDS):
                await self.management.create(
                    core_v1.Event(
                        metadata=meta_v1.ObjectMeta(generateName=f"{name}.", namespace=namespace),
                        involvedObject=core_models.ObjectReference(
                            apiVersion=meta.API_VERSION,
                            kind=imagebatch.ImageBatch.info.kind,
                            name=name,
                            namespace=namespace,
                            uid=batch.metadata.uid,
                        ),
                        type=event.type,
                        reason=event.reason,
                        message=event.message[:MAX_MESSAGE_LENGTH],
                        source=core_models.EventSource(component=settings.COMPONENT),
                        firstTimestamp=now,
                        lastTimestamp=now,
                        count=1,
                    )
                )
        except (lightkube.ApiError, httpx2.HTTPError, TimeoutError) as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("batch %s: could not post Event %s: %s", name, event.reason, error)
