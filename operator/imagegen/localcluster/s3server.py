"""A real S3-compatible server on a free loopback port: versitygw onto a folder.

versitygw speaks the S3 API with SigV4 (presigned URLs, user metadata, Content-MD5,
DeleteObjects) and keeps each object as a plain file under `<folder>/<bucket>/<key>`,
with its metadata in extended attributes. Its root credentials go in by environment
(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY), never on the command line, where any
`ps` would show them.
"""

from __future__ import annotations

import dataclasses
import pathlib
import secrets

from imagegen.api import objectstore
from imagegen.localcluster import process

BUCKET = "images"
"""The bucket each region's server is started with."""


@dataclasses.dataclass(kw_only=True)
class LocalS3:
    """A running versitygw, its credentials and where its objects lie."""

    port: int
    access_key_id: str = dataclasses.field(repr=False)
    secret_access_key: str = dataclasses.field(repr=False)
    folder: pathlib.Path
    """The posix backend's root: each bucket is a folder in it."""
    child: process.ManagedProcess
    bucket: str = BUCKET

    @property
    def endpoint(self) -> str:
        """http:// URL of the S3 API."""
        return f"http://127.0.0.1:{self.port}"

    def config(self, *, prefix: str = "") -> objectstore.ObjectStore:
        """The store config that reaches this server's bucket (path style, as versitygw
        serves no virtual-host names)."""
        url = f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"
        return objectstore.ObjectStore(url=url, endpoint=self.endpoint, path_style=True)

    def object_path(self, key: str) -> pathlib.Path:
        """The file holding an object of the bucket."""
        return self.folder / self.bucket / key

    def stop(self) -> None:
        """Stop and reap the server; the folder (the objects) stays."""
        self.child.stop()

    def restart(self, *, timeout_seconds: float = 20.0) -> None:
        """Start the stopped server again on the same port and folder."""
        self.child = process.spawn(
            name=self.child.name,
            argv=self.child.argv,
            log_path=self.child.log_path,
            env=_credentials_env(
                access_key_id=self.access_key_id, secret_access_key=self.secret_access_key
            ),
        )
        process.wait_for_port(process=self.child, port=self.port, timeout_seconds=timeout_seconds)


def start(*, binary: pathlib.Path, workdir: pathlib.Path, timeout_seconds: float = 20.0) -> LocalS3:
    """Start versitygw with fresh random credentials and one bucket, `images`."""
    folder = workdir / "objects"
    # The posix backend serves each top-level folder as a bucket.
    (folder / BUCKET).mkdir(parents=True, exist_ok=True)
    port = process.free_port()
    argv = [str(binary), "--port", f"127.0.0.1:{port}", "posix", str(folder)]
    access_key_id = "AK" + secrets.token_hex(8).upper()
    secret_access_key = secrets.token_urlsafe(30)
    child = process.spawn(
        name="versitygw",
        argv=argv,
        log_path=workdir / "versitygw.log",
        env=_credentials_env(access_key_id=access_key_id, secret_access_key=secret_access_key),
    )
    server = LocalS3(
        port=port,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        folder=folder,
        child=child,
    )
    try:
        process.wait_for_port(process=server.child, port=port, timeout_seconds=timeout_seconds)
    except process.StartError:
        server.stop()
        raise
    return server


def _credentials_env(*, access_key_id: str, secret_access_key: str) -> dict[str, str]:
    return {"ROOT_ACCESS_KEY_ID": access_key_id, "ROOT_SECRET_ACCESS_KEY": secret_access_key}
