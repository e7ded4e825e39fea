"""Real S3-compatible servers (versitygw) for tests: one per region, each with its own
credentials, and the store clients that reach them."""

from __future__ import annotations

import pathlib

from imagegen.localcluster import build, s3server
from imagegen.storage import stores


def binary() -> pathlib.Path:
    """versitygw, built from tests/controlplane/versitygw once and cached."""
    return build.ensure_built(only=("versitygw",))["versitygw"]


def credentials(server: s3server.LocalS3) -> stores.Credentials:
    """The server's root keys."""
    return stores.Credentials(
        access_key_id=server.access_key_id, secret_access_key=server.secret_access_key
    )
