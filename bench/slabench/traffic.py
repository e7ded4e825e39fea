"""The tenants' traffic, through the gateway as a partner sends it, and the batches as
their CRs say (a watch of the management cluster's ImageBatches, not a poll per batch)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx2

from imagegen import resources
from imagegen.api import imagebatch
from slabench import figures

IMAGE_SIZE = "64x64"
"""The local provider really draws every image: at the API's default 1024x1024 the drawing
alone costs a worker a good part of a core per image/s, which this 2-core machine does not
have. At 64x64 the image cost is the fixed --image-seconds sleep, as the issue asks."""
_SUBMIT_ATTEMPTS = 30
_MAX_BACKOFF_SECONDS = 5.0
_FLOOD_TICK_SECONDS = 1.0
_TERMINAL = frozenset(imagebatch.TERMINAL_PHASES)


class BatchBook:
    """Every ImageBatch of the management cluster as its CR says now (a reflector's sink)."""

    def __init__(self) -> None:
        self._batches: dict[str, figures.BatchRecord] = {}
        self._changed = asyncio.Event()

    def replace(self, objects: list[Any]) -> None:
        """Everything that exists now."""
        self._batches = {record.name: record for record in map(_record, objects)}
        self._changed.set()

    def apply(self, event: str, obj: Any) -> None:
        """One watch event."""
        record = _record(obj)
        if event == "DELETED":
            self._batches.pop(record.name, None)
        else:
            self._batches[record.name] = record
        self._changed.set()

    def known(self, name: str) -> bool:
        """Whether the watch has seen the batch."""
        return name in self._batches

    def active(self, tenant: str) -> int:
        """The tenant's batches not yet in a terminal phase."""
        return sum(
            1 for b in self._batches.values() if b.tenant == tenant and b.phase not in _TERMINAL
        )

    def finished(self, names: Iterable[str]) -> bool:
        """Whether all these batches are in a terminal phase."""
        return all(
            name in self._batches and self._batches[name].phase in _TERMINAL for name in names
        )

    async def wait_finished(self, names: Iterable[str], *, until: float) -> bool:
        """Wait until all these batches are in a terminal phase, or the Unix time `until`;
        whether they are."""
        wanted = list(names)
        while not self.finished(wanted):
            remaining = until - time.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
        return True

    def succeeded(self, tenants: Iterable[str]) -> int:
        """Images these tenants' batches have succeeded so far."""
        wanted = set(tenants)
        return sum(b.succeeded for b in self._batches.values() if b.tenant in wanted)

    def records(self, tenants: Iterable[str]) -> list[figures.BatchRecord]:
        """These tenants' batches."""
        wanted = set(tenants)
        return [b for b in self._batches.values() if b.tenant in wanted]


def _record(obj: Any) -> figures.BatchRecord:
    found = resources.as_dict(obj)
    status = found.get("status") or {}
    completed = status.get("completedAt")
    return figures.BatchRecord(
        name=found["metadata"]["name"],
        tenant=found["spec"]["tenant"],
        phase=status.get("phase"),
        succeeded=int((status.get("counts") or {}).get("succeeded", 0)),
        created=_seconds(found["metadata"]["creationTimestamp"]),
        completed=_seconds(completed) if completed else None,
        sla_met=status.get("slaMet"),
    )


def _seconds(stamp: Any) -> float:
    if isinstance(stamp, datetime.datetime):
        return stamp.timestamp()
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


class Submitter:
    """POSTs batches to the gateway with each tenant's API key and an Idempotency-Key, so a
    retry never creates a batch twice. A 429 is waited out as its Retry-After says; a 401
    or 503 (the operator publishes a new key a moment after its Secret) and a transport
    error are retried with backoff; all of them a bounded number of times."""

    def __init__(self, *, http: httpx2.AsyncClient, keys: dict[str, str]) -> None:
        self._http = http
        self._keys = keys
        self.counts = {"created": 0, "rate_limited": 0, "retried": 0}

    async def submit(self, *, tenant: str, images: int, priority: str) -> str:
        """Create a batch of `images` items for the tenant; its id (the CR's name)."""
        body = {
            "items": [
                {"id": f"i{index}", "prompt": f"bench image {index}", "seed": index}
                for index in range(images)
            ],
            "defaults": {"size": IMAGE_SIZE},
            "priority": priority,
        }
        headers = {
            "Authorization": f"Bearer {self._keys[tenant]}",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        backoff, last = 0.5, ""
        for _ in range(_SUBMIT_ATTEMPTS):
            try:
                reply = await self._http.post("/api/v1/batches", json=body, headers=headers)
            except httpx2.TransportError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if reply.status_code == 202:
                    self.counts["created"] += 1
                    return str(reply.json()["id"])
                if reply.status_code == 429:
                    self.counts["rate_limited"] += 1
                    await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
                    continue
                if reply.status_code not in (401, 503):
                    raise RuntimeError(
                        f"POST /api/v1/batches for {tenant}: {reply.status_code} {reply.text[:300]}"
                    )
                last = f"{reply.status_code}"
            self.counts["retried"] += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
        raise RuntimeError(f"POST /api/v1/batches for {tenant}: gave up, last answer {last}")


async def flood(
    *, submitter: Submitter, book: BatchBook, tenants: list[str], active: int, images: int
) -> None:
    """Keep `active` batches of `images` items unfinished for every tenant, forever."""
    async with asyncio.TaskGroup() as group:
        for tenant in tenants:
            group.create_task(
                _keep_active(
                    submitter=submitter, book=book, tenant=tenant, active=active, images=images
                )
            )


async def _keep_active(
    *, submitter: Submitter, book: BatchBook, tenant: str, active: int, images: int
) -> None:
    # Created but not yet seen by the watch: counted as active, or a tick would submit
    # them a second time.
    unseen: set[str] = set()
    while True:
        unseen = {name for name in unseen if not book.known(name)}
        for _ in range(active - book.active(tenant) - len(unseen)):
            unseen.add(await submitter.submit(tenant=tenant, images=images, priority="normal"))
        await asyncio.sleep(_FLOOD_TICK_SECONDS)


async def premium_batches(
    *, submitter: Submitter, tenant: str, count: int, every_seconds: float, images: int
) -> list[str]:
    """Submit `count` batches, one every `every_seconds` from now on the clock (a slow POST
    does not shift the next); their ids."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.TaskGroup() as group:
        posts = []
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index * every_seconds - loop.time()))
            posts.append(
                group.create_task(submitter.submit(tenant=tenant, images=images, priority="high"))
            )
    return [post.result() for post in posts]
