"""An in-memory view of one kind's objects, kept current by the watch helper.

The first list hands the whole set to a sink, then each watch event; a relist (after 410
Gone) replaces everything: a deletion missed during a gap must not leave, say, a revoked
API key valid.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import lightkube

from imagegen.kube import watching


class Sink(Protocol):
    """What a reflector feeds."""

    def replace(self, objects: list[Any]) -> None:
        """Everything that exists now (after a list)."""

    def apply(self, event: str, obj: Any) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""


class Reflector:
    """Feeds `sink` from a list and a watch of `resource`; `synced` is set after the first
    list, `health` says whether the watch is working."""

    def __init__(
        self,
        *,
        client: lightkube.AsyncClient,
        resource: Any,
        what: str,
        sink: Sink,
        options: watching.Options,
        namespace: str | None = None,
        labels: dict[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._resource = resource
        self.what = what
        self._sink = sink
        self._options = options
        self._namespace = namespace
        self._labels = labels
        self.synced = asyncio.Event()
        self.health = watching.Health()

    async def run(self) -> None:
        """Feed the sink until cancelled (or, with options.give_up_after, until the watch
        gives up: WatchBrokenError)."""
        async for event in watching.watch(
            self._client,
            self._resource,
            what=self.what,
            options=self._options,
            namespace=self._namespace,
            labels=self._labels,
            health=self.health,
        ):
            if isinstance(event, watching.Listed):
                self._sink.replace(event.objects)
                self.synced.set()
            else:
                self._sink.apply(event.type, event.object)
