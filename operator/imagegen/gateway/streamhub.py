"""One Kubernetes watch per namespace, fanned out to every stream that follows a batch in it.

A stream used to hold a watch of its own: a connection of the gateway's one client pool
each, so one tenant's viewers could take every connection and every other tenant's
requests waited and failed. Now the first stream of a namespace starts a Reflector of
that namespace's ImageBatches, every later one subscribes to it, and the last one to
leave stops it: the cost in connections grows with namespaces being watched, not with
viewers.

Each subscriber has a mailbox holding only the latest state of its batch: a stream shows
the batch as it is now, so a slow client skips states rather than queueing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import lightkube

from imagegen import reflector, resources

logger = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]
"""(ADDED | MODIFIED | DELETED, the object as a dict)."""


class Mailbox:
    """The latest event of one batch, waiting to be taken."""

    def __init__(self) -> None:
        self._latest: Event | None = None
        self._arrived = asyncio.Event()

    def put(self, event: Event) -> None:
        """Replace whatever was not taken yet: only the latest state matters."""
        self._latest = event
        self._arrived.set()

    async def get(self) -> Event:
        """The latest event, once there is one."""
        await self._arrived.wait()
        self._arrived.clear()
        assert self._latest is not None
        latest, self._latest = self._latest, None
        return latest


@dataclasses.dataclass
class _Namespace:
    """The subscribers of one namespace and the watch that feeds them."""

    mailboxes: dict[str, set[Mailbox]] = dataclasses.field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def replace(self, objects: list[Any]) -> None:
        """After a (re)list: the current state of every followed batch, or its deletion."""
        current = {str(obj.metadata.name): obj for obj in objects}
        for name, boxes in self.mailboxes.items():
            obj = current.get(name)
            event: Event = (
                ("MODIFIED", resources.as_dict(obj)) if obj is not None else ("DELETED", {})
            )
            for box in boxes:
                box.put(event)

    def apply(self, event: str, obj: Any) -> None:
        boxes = self.mailboxes.get(str(obj.metadata.name))
        if boxes:
            found = resources.as_dict(obj)
            for box in boxes:
                box.put((event, found))


class WatchHub:
    """Shared watches of ImageBatches, one per namespace with at least one subscriber."""

    def __init__(self, *, client: lightkube.AsyncClient, watch_seconds: int) -> None:
        self._client = client
        self._watch_seconds = watch_seconds
        self._namespaces: dict[str, _Namespace] = {}

    def watches(self) -> int:
        """Namespaces being watched now."""
        return len(self._namespaces)

    @contextlib.asynccontextmanager
    async def follow(self, *, namespace: str, name: str) -> AsyncIterator[Mailbox]:
        """A mailbox of the batch's events for as long as the context lasts."""
        watched = self._namespaces.get(namespace)
        if watched is None:
            watched = self._namespaces[namespace] = _Namespace()
            watcher = reflector.Reflector(
                client=self._client,
                resource=resources.ImageBatch,
                what=f"ImageBatches in {namespace}",
                sink=watched,
                namespace=namespace,
                watch_seconds=self._watch_seconds,
            )
            watched.task = asyncio.create_task(watcher.run(), name=watcher.what)
        box = Mailbox()
        watched.mailboxes.setdefault(name, set()).add(box)
        try:
            yield box
        finally:
            boxes = watched.mailboxes[name]
            boxes.discard(box)
            if not boxes:
                del watched.mailboxes[name]
            if not watched.mailboxes:
                del self._namespaces[namespace]
                assert watched.task is not None
                watched.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watched.task

    async def close(self) -> None:
        """Stop every watch (the app is stopping)."""
        tasks = [w.task for w in self._namespaces.values() if w.task is not None]
        self._namespaces.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
