"""One Kubernetes watch per namespace, fanned out to every stream that follows a batch in it.

The first stream of a namespace starts a watch of that namespace's ImageBatches (on the
gateway's watch client, a connection pool apart from its requests), every later one
subscribes to it, and the last one to leave stops it: the cost in connections grows with
namespaces being watched, not with viewers.

Each subscriber has a mailbox holding only the latest state of its batch: a stream shows
the batch as it is now, so a slow client skips states rather than queueing them.

The watches are supervised. One that ends (it gave up after failing GIVE_UP_AFTER times
in a row, or a bug ended it) fails every mailbox, so its streams end rather than hang
without news, and leaves the hub: the next subscriber of the namespace starts a new one.
`broken()` tells the readiness probe while a watch is failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import lightkube

from imagegen import resources
from imagegen.kube import watching

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = 5
"""Failures in a row after which a namespace's watch ends its streams: with the backoff
between them, some 10 to 30 s of an apiserver that cannot be watched. Its viewers are
better told to come back (WebSocket 1013, an SSE stream that ends and reconnects) than
kept waiting for news that cannot come."""

Event = tuple[str, dict[str, Any]]
"""(ADDED | MODIFIED | DELETED, the object as a dict)."""


class WatchEndedError(Exception):
    """The namespace's shared watch ended: its streams end too."""

    def __init__(self, message: str, *, gave_up: bool) -> None:
        super().__init__(message)
        self.gave_up = gave_up
        """True: Kubernetes could not be watched (try again later); False: a bug ended it."""


class Mailbox:
    """The latest event of one batch, waiting to be taken."""

    def __init__(self) -> None:
        self._latest: Event | None = None
        self._ended: WatchEndedError | None = None
        self._arrived = asyncio.Event()

    def put(self, event: Event) -> None:
        """Replace whatever was not taken yet: only the latest state matters."""
        self._latest = event
        self._arrived.set()

    def end(self, error: WatchEndedError) -> None:
        """No event will come any more: get() raises `error`."""
        self._ended = error
        self._arrived.set()

    async def get(self) -> Event:
        """The latest event, once there is one; WatchEndedError once the watch has ended."""
        await self._arrived.wait()
        if self._ended is not None:
            raise self._ended
        self._arrived.clear()
        assert self._latest is not None
        latest, self._latest = self._latest, None
        return latest


@dataclasses.dataclass
class _Namespace:
    """The subscribers of one namespace and the watch that feeds them."""

    mailboxes: dict[str, set[Mailbox]] = dataclasses.field(default_factory=dict)
    health: watching.Health = dataclasses.field(default_factory=watching.Health)
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

    def end(self, error: WatchEndedError) -> None:
        for boxes in self.mailboxes.values():
            for box in boxes:
                box.end(error)


class WatchHub:
    """Shared watches of ImageBatches, one per namespace with at least one subscriber."""

    def __init__(self, *, client: lightkube.AsyncClient, options: watching.Options) -> None:
        self._client = client
        self._options = options
        self._namespaces: dict[str, _Namespace] = {}

    def watches(self) -> int:
        """Namespaces being watched now."""
        return len(self._namespaces)

    def broken(self) -> bool:
        """Whether a namespace's watch is failing now."""
        return any(watched.health.broken() for watched in self._namespaces.values())

    @contextlib.asynccontextmanager
    async def follow(self, *, namespace: str, name: str) -> AsyncIterator[Mailbox]:
        """A mailbox of the batch's events for as long as the context lasts."""
        watched = self._namespaces.get(namespace)
        if watched is None:
            watched = self._namespaces[namespace] = _Namespace()
            watched.task = asyncio.create_task(
                self._feed(namespace, watched),
                name=f"ImageBatches in {namespace}",
                # A context of its own: the watch serves every later subscriber too, so its
                # log lines must not carry the first one's request id.
                context=contextvars.Context(),
            )
            watched.task.add_done_callback(lambda task: self._ended(namespace, watched, task))
        box = Mailbox()
        watched.mailboxes.setdefault(name, set()).add(box)
        try:
            yield box
        finally:
            boxes = watched.mailboxes[name]
            boxes.discard(box)
            if not boxes:
                del watched.mailboxes[name]
            if not watched.mailboxes and self._namespaces.get(namespace) is watched:
                del self._namespaces[namespace]
                assert watched.task is not None
                watched.task.cancel()
                # wait(), not await: a watch that died meanwhile raises nothing here.
                await asyncio.wait([watched.task])

    async def close(self) -> None:
        """Stop every watch (the app is stopping)."""
        tasks = [w.task for w in self._namespaces.values() if w.task is not None]
        self._namespaces.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _feed(self, namespace: str, watched: _Namespace) -> None:
        async for event in watching.watch(
            self._client,
            resources.ImageBatch,
            what=f"ImageBatches in {namespace}",
            options=self._options,
            namespace=namespace,
            health=watched.health,
        ):
            if isinstance(event, watching.Listed):
                watched.replace(event.objects)
            else:
                watched.apply(event.type, event.object)

    def _ended(self, namespace: str, watched: _Namespace, task: asyncio.Task[None]) -> None:
        """A watch task is done: cancelled by its last subscriber, or dead."""
        if task.cancelled():
            return
        error = task.exception()
        if self._namespaces.get(namespace) is watched:
            del self._namespaces[namespace]
        gave_up = isinstance(error, watching.WatchBrokenError)
        if gave_up:
            logger.warning("the stream watch of %s gave up, its streams end: %s", namespace, error)
        else:
            logger.error("the stream watch of %s ended, its streams end", namespace, exc_info=error)
        watched.end(WatchEndedError(f"the watch of {namespace} ended: {error}", gave_up=gave_up))
