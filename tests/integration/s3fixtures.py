"""Real S3-compatible servers (versitygw) for tests: one per region, each with its own
credentials, and the store clients that reach them."""

from __future__ import annotations

import hashlib
import pathlib

import lightkube
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen.api import objectstore
from imagegen.localcluster import build, operatorsetup, s3server
from imagegen.storage import stores


def binary() -> pathlib.Path:
    """versitygw, built from tests/controlplane/versitygw once and cached."""
    return build.ensure_built(only=("versitygw",))["versitygw"]


def credentials(server: s3server.LocalS3) -> stores.Credentials:
    """The server's root keys."""
    return stores.Credentials(
        access_key_id=server.access_key_id, secret_access_key=server.secret_access_key
    )


def secret_name(region: str) -> str:
    """The Secret of a region's store keys in the operator's namespace."""
    return f"store-{region}"


def apply_credentials_secret(
    *, client: lightkube.Client, name: str, server: s3server.LocalS3
) -> None:
    """The store's keys as the operator reads them: a Secret in its namespace."""
    client.apply(
        core_v1.Secret(
            metadata=meta_v1.ObjectMeta(name=name, namespace=operatorsetup.NAMESPACE),
            stringData={
                objectstore.ACCESS_KEY_ID: server.access_key_id,
                objectstore.SECRET_ACCESS_KEY: server.secret_access_key,
            },
        ),
        field_manager="imagegen-tests",
        force=True,
    )


def credentials_dir(*, folder: pathlib.Path, servers: dict[str, s3server.LocalS3]) -> pathlib.Path:
    """The gateway's mounted Secrets: `<folder>/<region>/{accessKeyId,secretAccessKey}`."""
    for region, server in servers.items():
        (folder / region).mkdir(parents=True, exist_ok=True)
        (folder / region / objectstore.ACCESS_KEY_ID).write_text(server.access_key_id)
        (folder / region / objectstore.SECRET_ACCESS_KEY).write_text(server.secret_access_key)
    return folder


def worker_args(server: s3server.LocalS3) -> tuple[str, ...]:
    """`imagegen worker` flags that store into the server's bucket."""
    return (
        "--store-url", f"s3://{server.bucket}", "--store-endpoint", server.endpoint,
        "--store-path-style", "true",
    )  # fmt: skip


def worker_env(server: s3server.LocalS3, *, secret: str | None = None) -> dict[str, str]:
    """The server's keys as a worker pod gets them (`secret` in place of the right one)."""
    return {
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret or server.secret_access_key,
    }


async def broken_objects(*, server: s3server.LocalS3, keys: list[str]) -> list[str]:
    """Those of `keys` that are not one whole object: missing, or bytes that do not hash
    to the SHA-256 the worker stored in its metadata."""
    broken = []
    async with stores.open_store(config=server.config(), credentials=credentials(server)) as store:
        for key in keys:
            found = await store.head(key=key)
            data = b"".join([chunk async for chunk in store.read(key=key)]) if found else b""
            if found is None or hashlib.sha256(data).hexdigest() != found.metadata.get("sha256"):
                broken.append(key)
    return broken
