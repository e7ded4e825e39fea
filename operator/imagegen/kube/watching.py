"""The one watch path of every process: list, then watch from the list's resourceVersion.

What it does, as Kopf's (`kopf/_cogs/clients/watching.py`) and client-go's reflector do:

- The first list hands over everything that exists (`Listed`), then each watch event one
  change (`Changed`), in order.
- A watch that the server ends (timeoutSeconds) or whose connection fails resumes from the
  last resourceVersion seen, bookmarks included: nothing is listed again, nothing missed.
- 410 Gone (that version is older than the apiserver keeps) lists again: only a fresh list
  can tell what was deleted meanwhile.
- A connection silent for `inactivity_seconds` is presumed dead and replaced: a half-open
  one (the peer gone without FIN or RST) would otherwise hang a read forever. The watch
  asks for bookmarks, which the apiserver sends about once a minute, so a live watch of
  a quiet collection is never that silent.
- A line that does not decode (a stream cut mid-event) is a failed connection too.
- Failures back off exponentially with jitter, up to `max_backoff_seconds`; the count
  resets once the apiserver accepts a watch again (a list alone does not: one that works
  followed by a watch that is refused is still an outage). `give_up_after` failures in a
  row end the watch with WatchBrokenError, for consumers better told than kept waiting;
  without it the watch retries for as long as it is read, and its Health says it is
  failing.

The caller reads the events with `async for`; an error the caller raises while handling
one leaves the generator, which closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx2
import lightkube
import msgspec
from lightkube.core import decoders
from lightkube.core import selector as lightkube_selector

from imagegen import supervision
from imagegen.kube import objects

logger = logging.getLogger(__name__)

GONE = 410
BROKEN_AFTER_FAILURES = 2
"""One failure is a blip (a connection renewed, an apiserver restarted); two in a row,
with a backoff between them, is an outage worth reporting."""
LIST_CHUNK = 500
"""Objects per page of a list: a large collection is read in bounded pieces."""

_RETRIED: tuple[type[Exception], ...] = (
    # ApiError (a Status the apiserver sent, in an ERROR event too), HTTPStatusError (a
    # watch refused before its stream began), and every transport error.
    httpx2.HTTPError,
    # msgspec's DecodeError: a line lightkube cannot decode, such as a stream cut mid-event.
    ValueError,
    # Our inactivity timeout (SilentError).
    TimeoutError,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """How one watch runs."""

    server_timeout_seconds: int = 290
    """Asked of the apiserver: end each watch request after this, so it is renewed (and
    load-balanced) regularly. Whole seconds: the apiserver refuses a fraction."""
    inactivity_seconds: float = 70.0
    """No event, not even a bookmark, for this long: the connection is presumed dead.
    Above the apiserver's bookmark period (about 60 s)."""
    first_backoff_seconds: float = 0.5
    """The pause after a first failure; it doubles with each failure in a row."""
    max_backoff_seconds: float = 30.0
    """The longest pause between two attempts."""
    give_up_after: int | None = None
    """Failures in a row after which the watch ends with WatchBrokenError; None: never."""


@dataclasses.dataclass(frozen=True)
class Listed:
    """Everything that exists now: after the first list, and after each relist."""

    objects: list[Any]


@dataclasses.dataclass(frozen=True)
class Changed:
    """One watch event."""

    type: str
    """ADDED, MODIFIED or DELETED."""
    object: Any


Event = Listed | Changed


class Step(enum.Enum):
    """What a watch does after a failure."""

    RELIST = "relist"
    """List again, then watch from the new list's resourceVersion."""
    RESUME = "resume"
    """Watch again from the last resourceVersion seen."""


class WatchBrokenError(Exception):
    """A watch failed `give_up_after` times in a row and ended."""


class SilentError(TimeoutError):
    """Nothing arrived for `inactivity_seconds`: the connection is presumed dead."""


@dataclasses.dataclass
class Health:
    """How a watch is doing, for probes and logs."""

    failures: int = 0
    """Failures since the apiserver last accepted a watch."""
    last_error: str | None = None
    """What the latest failure was (its type and message), until the watch recovers."""

    def broken(self) -> bool:
        """Whether the watch is failing, not only blipping."""
        return self.failures >= BROKEN_AFTER_FAILURES

    def failed(self, error: BaseException) -> None:
        """Count one more failure in a row."""
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"

    def recovered(self) -> None:
        """The apiserver accepted a watch: it works."""
        self.failures = 0
        self.last_error = None


def step_after(error: BaseException) -> Step:
    """410 Gone lists again; any other failure resumes from the last version seen."""
    return Step.RELIST if objects.status_of(error) == GONE else Step.RESUME


def backoff_seconds(*, failures: int, options: Options, jitter: float) -> float:
    """The pause after `failures` failures in a row: exponential, capped, and spread by
    `jitter` (0..1) over its upper half, so that watches failing together (an apiserver
    restart) do not come back together."""
    ceiling = min(
        options.max_backoff_seconds, options.first_backoff_seconds * 2.0 ** max(failures - 1, 0)
    )
    return ceiling * (0.5 + jitter / 2)


async def watch(
    client: lightkube.AsyncClient,
    resource: Any,
    *,
    what: str,
    options: Options,
    namespace: str | None = None,
    labels: Mapping[str, Any] | None = None,
    health: Health | None = None,
) -> AsyncGenerator[Event, None]:
    """The objects of `resource` (in `namespace`, or cluster-wide; with `labels` if given):
    a Listed now and after each relist, a Changed per watch event, until the caller stops
    reading or the watch gives up. `what` names the watch in logs; `health` is updated."""
    health = health if health is not None else Health()
    scope = _Scope(namespace=namespace, labels=dict(labels) if labels is not None else None)
    version: str | None = None
    relisted_for_gone = False
    while True:
        try:
            if version is None:
                listing = client.list(resource, chunk_size=LIST_CHUNK, **scope.list_arguments())
                found = [obj async for obj in listing]
                version = listing.resourceVersion
                yield Listed(found)
            request = _one_request(
                client, resource, version=version, options=options, scope=scope, health=health
            )
            # aclosing: a caller that stops reading closes the connection now, not at GC.
            async with contextlib.aclosing(request):
                async for kind, obj in request:
                    version = obj.metadata.resourceVersion or version
                    relisted_for_gone = False
                    if kind != "BOOKMARK":
                        yield Changed(kind, obj)
        except _RETRIED as error:
            supervision.stop_if_cancelled()
            if step_after(error) is Step.RELIST:
                version = None
                if not relisted_for_gone:
                    # The normal cure for a watch away too long, at once. A second 410
                    # before any event would be odd: then it pauses as failures do.
                    logger.info("watch of %s: its version is gone (410), listing again", what)
                    relisted_for_gone = True
                    continue
            health.failed(error)
            if options.give_up_after is not None and health.failures >= options.give_up_after:
                raise WatchBrokenError(
                    f"watch of {what} failed {health.failures} times in a row: {error}"
                ) from error
            pause = backoff_seconds(
                failures=health.failures,
                options=options,
                # Spreading retries is no secret: the standard generator is right here.
                jitter=random.random(),  # noqa: S311
            )
            logger.warning(
                "watch of %s failed (%d in a row), again in %.1fs: %s",
                what,
                health.failures,
                pause,
                health.last_error,
            )
            await asyncio.sleep(pause)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Scope:
    namespace: str | None
    labels: dict[str, Any] | None

    def list_arguments(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.namespace is not None:
            found["namespace"] = self.namespace
        if self.labels is not None:
            found["labels"] = self.labels
        return found


async def _one_request(
    client: lightkube.AsyncClient,
    resource: Any,
    *,
    version: str,
    options: Options,
    scope: _Scope,
    health: Health,
) -> AsyncGenerator[tuple[str, Any], None]:
    """One watch request for the events after `version`, until the server ends it. The
    health recovers once the apiserver accepts it; TimeoutError when no line arrives for
    `inactivity_seconds`."""
    # lightkube's public watch() neither asks for bookmarks nor tells when the apiserver
    # accepted the watch; its request builder and watch decoder (the ones watch() uses) do
    # the rest of the work. Bookmarks are what tell a dead connection from a quiet
    # collection; the acceptance is when a watch that failed works again.
    # Untyped inside lightkube.
    generic: Any = client._client
    request = generic.prepare_request(
        "list",
        res=resource,
        watch=True,
        namespace=scope.namespace,
        params={
            "resourceVersion": version,
            "timeoutSeconds": options.server_timeout_seconds,
            "allowWatchBookmarks": "true",
            "labelSelector": (
                lightkube_selector.build_selector(scope.labels) if scope.labels else None
            ),
        },
    )
    # The client's timeouts with reads unbounded, as lightkube sets them for a watch: the
    # inactivity timeout bounds the reads instead.
    request.timeout = generic._watch_timeout
    async with _silence_bound(options):
        response = await generic.send(generic.build_adapter_request(request), stream=True)
    try:
        if response.is_error:
            await response.aread()
            generic.raise_for_status(response)
        health.recovered()
        async with contextlib.aclosing(response.aiter_lines()) as lines:
            while True:
                # Only the wait for the next line is timed, never the caller's handling.
                async with _silence_bound(options):
                    line = await anext(lines, None)
                if line is None:
                    return
                if line:
                    yield _decoded(line, request.response_type)
    finally:
        await response.aclose()


class _BookmarkMetadata(msgspec.Struct):
    resourceVersion: str | None = None  # noqa: N815 (the API's spelling)


class _Bookmark(msgspec.Struct):
    """A bookmark's object: only its resourceVersion means anything."""

    metadata: _BookmarkMetadata


def _decoded(line: str, resource_type: Any) -> tuple[str, Any]:
    """One event of the stream, decoded once (lightkube's WatchDriver would decode the
    event again to read its object). A bookmark's object is not decoded as the resource:
    it is an empty one (a Pod's bookmark has `spec.containers: null`), which a model with
    required fields refuses, and that would fail the watch at every bookmark."""
    event = decoders.decode_watch_event(line.encode())
    if event.type == "ERROR":
        raise lightkube.ApiError(status=decoders.decode_status(event.object))
    if event.type == "BOOKMARK":
        return event.type, msgspec.json.decode(event.object, type=_Bookmark)
    return event.type, decoders.decode_object(event.object, resource_type)


@contextlib.asynccontextmanager
async def _silence_bound(options: Options) -> AsyncGenerator[None, None]:
    try:
        async with asyncio.timeout(options.inactivity_seconds):
            yield
    except TimeoutError as error:
        raise SilentError(f"nothing for {options.inactivity_seconds:g}s") from error
