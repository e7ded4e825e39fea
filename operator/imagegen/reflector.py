"""An in-memory view of one kind's objects kept current by a Kubernetes watch.

List once, hand the whole set to a sink, then watch from the list's resourceVersion and
hand over each event. When the watch ends or fails (410 Gone after a long disconnect, an
apiserver restart), list again and replace everything: a deletion missed during a gap
must not leave, say, a revoked API key valid.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import httpx2
import lightkube
from lightkube.core import exceptions as kube_errors
from lightkube.types import OnErrorAction, OnErrorResult

logger = logging.getLogger(__name__)

_FIRST_BACKOFF_SECONDS = 0.5
_MAX_BACKOFF_SECONDS = 30.0
_CYCLE_GRACE_SECONDS = 30


class Sink(Protocol):
    """What a reflector feeds."""

    def replace(self, objects: list[Any]) -> None:
        """Everything that exists now (after a list)."""

    def apply(self, event: str, obj: Any) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""


def stop_on_gone(error: Exception, _count: int) -> OnErrorResult:
    """Watch error policy: stop on 410 Gone (the caller relists), raise anything else."""
    # 410 Gone: our resourceVersion is too old; relisting is the cure, not retrying.
    if isinstance(error, lightkube.ApiError) and error.status.code == 410:
        return OnErrorResult(action=OnErrorAction.STOP)
    return OnErrorResult(action=OnErrorAction.RAISE)


class Reflector:
    """Feeds `sink` from a list and a watch of `resource`; `synced` is set after the first list."""

    def __init__(
        self,
        *,
        client: lightkube.AsyncClient,
        resource: Any,
        what: str,
        sink: Sink,
        watch_seconds: int,
        namespace: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._resource = resource
        self.what = what
        self._sink = sink
        self._watch_seconds = watch_seconds
        self._namespace = namespace
        self._labels = labels
        self.synced = asyncio.Event()

    async def run(self) -> None:
        """List and watch until cancelled; failures are logged and retried with backoff."""
        backoff = _FIRST_BACKOFF_SECONDS
        while True:
            try:
                # lightkube renews a watch the server ends, forever, and reads it without a
                # timeout; a bounded cycle also ends a half-open connection that would
                # otherwise hang silently, at the cost of one list per cycle.
                async with asyncio.timeout(self._watch_seconds + _CYCLE_GRACE_SECONDS):
                    await self._list_then_watch()
                backoff = _FIRST_BACKOFF_SECONDS
            except TimeoutError:
                backoff = _FIRST_BACKOFF_SECONDS
            # ValueError: a stream cut mid-event leaves a line lightkube cannot decode.
            except (
                lightkube.ApiError,
                httpx2.HTTPError,
                kube_errors.LoadResourceError,
                ValueError,
            ) as error:
                logger.warning("%s watch failed, relisting in %.1fs: %s", self.what, backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _list_then_watch(self) -> None:
        listing = self._client.list(self._resource, **self._scope())
        objects = [obj async for obj in listing]
        self._sink.replace(objects)
        self.synced.set()
        try:
            version: str | None = listing.resourceVersion
        except kube_errors.NotReadyError:
            version = None
        async for event, obj in self._client.watch(
            self._resource,
            resource_version=version,
            server_timeout=self._watch_seconds,
            on_error=stop_on_gone,
            **self._scope(),
        ):
            self._sink.apply(event, obj)

    def _scope(self) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        if self._namespace is not None:
            scope["namespace"] = self._namespace
        if self._labels is not None:
            scope["labels"] = self._labels
        return scope
