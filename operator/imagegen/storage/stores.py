"""The store a region's config names, with the credentials its process was given."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
from collections.abc import AsyncIterator

from imagegen.api import objectstore
from imagegen.storage import base, files, s3


@dataclasses.dataclass(frozen=True, kw_only=True)
class Credentials:
    """An access key pair; kept out of repr so that it never reaches a log."""

    access_key_id: str = dataclasses.field(repr=False)
    secret_access_key: str = dataclasses.field(repr=False)

    @classmethod
    def from_files(cls, folder: pathlib.Path) -> Credentials:
        """Read `accessKeyId` and `secretAccessKey` from a mounted Secret's folder."""
        return cls(
            access_key_id=(folder / objectstore.ACCESS_KEY_ID).read_text().strip(),
            secret_access_key=(folder / objectstore.SECRET_ACCESS_KEY).read_text().strip(),
        )


DEFAULT_CONNECTIONS = 10
"""Connections an S3 store keeps open at most, unless its user says how many requests it
makes at once (botocore's own default)."""


@contextlib.asynccontextmanager
async def open_store(
    *,
    config: objectstore.ObjectStore,
    credentials: Credentials | None = None,
    connections: int = DEFAULT_CONNECTIONS,
) -> AsyncIterator[base.Store]:
    """The store of `config`, open until the context ends. Without credentials an S3
    store uses botocore's default chain (the pod's role, workload identity, AWS_* env).
    `connections`: how many requests its user makes at once (a worker: its slots)."""
    if config.scheme == "file":
        yield files.FileStore(root=pathlib.Path(config.location().prefix))
        return
    async with s3.open_s3(
        config=config,
        access_key_id=credentials.access_key_id if credentials else None,
        secret_access_key=credentials.secret_access_key if credentials else None,
        connections=connections,
    ) as store:
        yield store
