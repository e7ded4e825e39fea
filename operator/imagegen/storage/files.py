"""A folder as an object store: `file:///root`, for the local stack and single-node trials.

The object `<tenant>/<batch uid>/<item id>.<ext>` is the file of that path under the root.
Its metadata is a hidden JSON file beside it, `.<item id>.<ext>.meta`. Both are written to
a temporary name in the same directory, flushed to disk and renamed into place, metadata
first: a reader never sees a half-written image, even when the worker dies mid-write, and
an image never appears without its metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import BinaryIO

from imagegen.api import objectstore
from imagegen.storage import base

FILE_MODE = 0o644
"""Images may be served by another process that shares the folder."""
_META_SUFFIX = ".meta"


class FileStore:
    """Images as files under one root directory."""

    def __init__(self, *, root: pathlib.Path) -> None:
        # Absolute, so the file:// URIs handed out stay valid whatever the cwd.
        self.root = root.resolve()

    @property
    def name(self) -> str:
        """The root's file:// URL."""
        return self.root.as_uri()

    def path(self, *, key: str) -> pathlib.Path:
        """The file of `key`; ValueError for a key that leaves the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"key {key!r} is not below {self.root}")
        return path

    def uri(self, *, key: str) -> str:
        """The file:// URI of `key`."""
        return self.path(key=key).as_uri()

    def key_of(self, *, uri: str) -> str | None:
        """The key of a file:// URI under the root, else None."""
        parsed = urllib.parse.urlsplit(uri)
        if parsed.scheme != "file":
            return None
        path = pathlib.Path(urllib.parse.unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            return None
        return path.relative_to(self.root).as_posix()

    async def put(
        self, *, name: objectstore.ImageName, data: bytes, metadata: Mapping[str, str]
    ) -> base.StoredObject:
        """Write metadata, then the image, each atomically, in a thread."""
        path = self.path(key=name.key)
        document = json.dumps({"contentType": name.content_type, "metadata": dict(metadata)})
        try:
            await asyncio.to_thread(
                _write_atomically, path=_meta_path(path), data=document.encode()
            )
            await asyncio.to_thread(_write_atomically, path=path, data=data)
        except OSError as error:
            raise base.StoreError(store=self.name, reason="Refused", detail=str(error)) from error
        return base.StoredObject(
            uri=path.as_uri(),
            key=name.key,
            size=len(data),
            content_type=name.content_type,
            metadata=dict(metadata),
        )

    async def head(self, *, key: str) -> base.StoredObject | None:
        """The image's size and metadata; None without both files (a foreign or
        half-stored image is made anew)."""
        path = self.path(key=key)
        return await asyncio.to_thread(self._head, key=key, path=path)

    def _head(self, *, key: str, path: pathlib.Path) -> base.StoredObject | None:
        try:
            document = json.loads(_meta_path(path).read_bytes())
            size = path.stat().st_size
            content_type = str(document["contentType"])
            metadata = {str(k): str(v) for k, v in dict(document["metadata"]).items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return base.StoredObject(
            uri=path.as_uri(), key=key, size=size, content_type=content_type, metadata=metadata
        )

    async def read(self, *, key: str) -> AsyncIterator[bytes]:
        """The file in chunks, each read in a thread."""
        path = self.path(key=key)
        try:
            file: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as error:
            raise base.StoreError(store=self.name, reason="NotFound", detail=key) from error
        except OSError as error:
            raise base.StoreError(store=self.name, reason="Refused", detail=str(error)) from error
        try:
            while chunk := await asyncio.to_thread(file.read, base.CHUNK_BYTES):
                yield chunk
        finally:
            await asyncio.to_thread(file.close)

    async def presign(self, *, key: str, seconds: int) -> str | None:
        """None: a folder has no URLs of its own; the gateway streams its files."""
        del key, seconds
        return None

    async def delete_prefix(self, *, prefix: str) -> int:
        """Delete the files below `prefix` (a batch's folder) and the folder."""
        folder = self.path(key=prefix)
        return await asyncio.to_thread(_delete_tree, folder=folder)

    async def check(self) -> None:
        """The root exists or can be made, and is writable."""
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
            if not await asyncio.to_thread(os.access, self.root, os.W_OK):
                raise PermissionError(f"{self.root} is not writable")
        except OSError as error:
            raise base.StoreError(store=self.name, reason="Refused", detail=str(error)) from error


def _meta_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(f".{path.name}{_META_SUFFIX}")


def _delete_tree(*, folder: pathlib.Path) -> int:
    if not folder.is_dir():
        return 0
    count = sum(1 for path in folder.rglob("*") if path.is_file() and not path.name.startswith("."))
    shutil.rmtree(folder)
    return count


def _write_atomically(*, path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target: os.replace is atomic only within one file system.
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), FILE_MODE)
            file.write(data)
            file.flush()
            # On disk before the rename, or a crash could leave the new name on empty data.
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: pathlib.Path) -> None:
    """Make the rename itself durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
