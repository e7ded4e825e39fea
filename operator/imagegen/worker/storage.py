"""Where finished images go: a local directory by default (a volume in Kubernetes).

Each image has one name derived from its batch uid and item id,
`<root>/<batch uid>/<item id>.<ext>`, so an item that is run twice (an expired lease, a
region failover) overwrites its own file instead of adding another. Files are written to
a temporary name in the same directory and renamed into place, so a reader never sees a
half-written image, even when the worker dies mid-write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import tempfile
from typing import Protocol

from imagegen.api import imagebatch

EXTENSIONS: dict[imagebatch.Format, str] = {"png": "png", "jpeg": "jpg", "webp": "webp"}

# Names that are one plain path component: no separators, and never "." or "..", because
# a name must start with a letter or digit.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# Images may be served by another process that shares the volume.
FILE_MODE = 0o644


class Storage(Protocol):
    """A place to keep images, addressed by batch uid and item id."""

    async def save(
        self, *, batch_uid: str, item_id: str, format: imagebatch.Format, data: bytes
    ) -> str:
        """Store the image, replacing an earlier copy of the same item; return its URI."""
        ...

    async def exists(self, *, batch_uid: str, item_id: str, format: imagebatch.Format) -> bool:
        """Whether the item's image is stored."""
        ...


class LocalStorage:
    """Images as files under one root directory."""

    def __init__(self, *, root: pathlib.Path) -> None:
        # Absolute, so the file:// URIs handed out stay valid whatever the cwd.
        self.root = root.resolve()

    def path_for(self, *, batch_uid: str, item_id: str, format: imagebatch.Format) -> pathlib.Path:
        """The file of one item; ValueError for a uid or id that is not a plain name."""
        _check_name(field="batch uid", value=batch_uid)
        _check_name(field="item id", value=item_id)
        return self.root / batch_uid / f"{item_id}.{EXTENSIONS[format]}"

    async def save(
        self, *, batch_uid: str, item_id: str, format: imagebatch.Format, data: bytes
    ) -> str:
        """Write the image atomically, in a thread; return its file:// URI."""
        path = self.path_for(batch_uid=batch_uid, item_id=item_id, format=format)
        await asyncio.to_thread(_write_atomically, path=path, data=data)
        return path.as_uri()

    async def exists(self, *, batch_uid: str, item_id: str, format: imagebatch.Format) -> bool:
        """Whether the item's image is stored."""
        path = self.path_for(batch_uid=batch_uid, item_id=item_id, format=format)
        return await asyncio.to_thread(path.is_file)


def _check_name(*, field: str, value: str) -> None:
    if not _SAFE_NAME.fullmatch(value):
        raise ValueError(
            f"{field}: {value!r} is not a plain file name (letters, digits, '.', '_', '-', "
            "starting with a letter or digit, at most 128 characters)"
        )


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
