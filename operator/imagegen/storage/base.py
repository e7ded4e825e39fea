"""The interface every object store offers, and its errors."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Literal, Protocol, TypeVar

from imagegen.api import objectstore

_T = TypeVar("_T")

Reason = Literal["Unreachable", "AccessDenied", "NotFound", "Refused"]
"""Why a store call failed: no answer (network, timeout, 5xx); the credentials were
refused (or there are none); no such object or bucket; any other refusal."""

CHUNK_BYTES = 256 * 1024
"""Size of the pieces an object is read in: a stream never holds a whole image at once."""
INLINE_HASH_BYTES = 64 * 1024
"""Largest image hashed on the event loop. Below it a hash takes less time than handing it
to a thread and back (about 60 us of CPU, and a wake-up on a busy machine); above it the
hash runs in a thread, as hashlib frees the GIL, so a photo-sized image never holds up
the other slots."""


async def digest(*, data: bytes, function: Callable[[bytes], _T]) -> _T:
    """`function(data)`, a hash of the image: on the loop when it is small, else in a
    thread (INLINE_HASH_BYTES)."""
    if len(data) <= INLINE_HASH_BYTES:
        return function(data)
    return await asyncio.to_thread(function, data)


class StoreError(Exception):
    """A store call failed; the message names the store, never a credential."""

    def __init__(self, *, store: str, reason: Reason, detail: str) -> None:
        super().__init__(f"object store {store}: {reason}: {detail}")
        self.store = store
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredObject:
    """An object in a store."""

    uri: str
    """`file:///...` or `s3://bucket/key`: what an item's status records."""
    key: str
    """Name below the store's prefix, `<tenant>/<batch uid>/<item id>.<ext>`."""
    size: int
    content_type: str
    metadata: Mapping[str, str]
    """The user metadata it was stored with (`objectstore.METADATA_FIELDS`)."""


class Store(Protocol):
    """One region's object store."""

    @property
    def name(self) -> str:
        """How logs and conditions name it (URL and endpoint, no credentials)."""
        ...

    def uri(self, *, key: str) -> str:
        """The URI of the object `key`."""
        ...

    def key_of(self, *, uri: str) -> str | None:
        """The key a URI names in this store, or None when it names no object here."""
        ...

    async def put(
        self, *, name: objectstore.ImageName, data: bytes, metadata: Mapping[str, str]
    ) -> StoredObject:
        """Store the image atomically (no reader sees a part of it), replacing an earlier
        copy of the same item. StoreError when the store fails."""
        ...

    async def head(self, *, key: str) -> StoredObject | None:
        """The object's size, type and metadata, or None when there is none."""
        ...

    def read(self, *, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks of at most CHUNK_BYTES; StoreError when missing."""
        ...

    async def presign(self, *, key: str, seconds: int) -> str | None:
        """A URL that reads the object without credentials for `seconds`, or None when
        the store has no such URLs (a folder: the caller streams it)."""
        ...

    async def delete_prefix(self, *, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; return how many went."""
        ...

    async def check(self) -> None:
        """Reach the store and its bucket with the credentials; StoreError when not."""
        ...
