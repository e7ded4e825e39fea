"""Any S3-compatible service as an object store, through aiobotocore.

A PUT is atomic in S3: the object appears whole when the request completes, and a
request cut off midway (a killed worker) leaves no object. The store checks the bytes it
got against a digest the request carries: over https that is Content-MD5, which every
S3-compatible service verifies (botocore then signs the payload as UNSIGNED-PAYLOAD and
hashes nothing itself); over plain http botocore always signs the body's SHA-256
(x-amz-content-sha256), which the store verifies as SigV4 requires, so a Content-MD5
would check the same bytes twice and is left out. The image's SHA-256 is in the metadata
either way. botocore's newer default checksums (a CRC32 trailer on every PUT) are
switched off ("when_required"): GCS's S3 API and older MinIO and Ceph refuse them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import aiobotocore.session
import aiohttp
import botocore.exceptions
from aiobotocore import config as aioconfig

from imagegen.api import objectstore
from imagegen.storage import base

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import PutObjectRequestTypeDef

_ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "Forbidden",
        "403",
    }
)
_DELETE_BATCH = 1000
"""Keys per DeleteObjects request: the S3 API's limit."""


@contextlib.asynccontextmanager
async def open_s3(
    *,
    config: objectstore.ObjectStore,
    access_key_id: str | None,
    secret_access_key: str | None,
    connections: int,
) -> AsyncIterator[S3Store]:
    """An S3Store on `config` with up to `connections` open at once (one per concurrent
    request: a request finding none free waits for one), closed on exit."""
    session = aiobotocore.session.get_session()
    client_config = aioconfig.AioConfig(
        signature_version="s3v4",
        max_pool_connections=connections,
        connect_timeout=config.timeout_seconds,
        read_timeout=config.timeout_seconds,
        # One retry inside botocore for a dropped connection; longer outages are the
        # caller's to wait out (the worker's backoff inside its lease).
        retries={"max_attempts": 2, "mode": "standard"},
        s3={"addressing_style": "path" if config.path_style else "virtual"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    async with session.create_client(
        "s3",
        region_name=config.region,
        endpoint_url=config.endpoint,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=client_config,
    ) as client:
        yield S3Store(config=config, client=client)


class S3Store:
    """Images as objects in one bucket, below one prefix."""

    def __init__(self, *, config: objectstore.ObjectStore, client: S3Client) -> None:
        self._config = config
        self._client = client
        location = config.location()
        self._bucket = location.bucket
        self._prefix = f"{location.prefix}/" if location.prefix else ""
        # AWS itself (no endpoint) is https.
        self._payload_signed = (config.endpoint or "").startswith("http://")

    @property
    def name(self) -> str:
        """The store's URL and endpoint."""
        return self._config.describe()

    def _full(self, key: str) -> str:
        return self._prefix + key

    def uri(self, *, key: str) -> str:
        """`s3://bucket/prefix/key`."""
        return f"s3://{self._bucket}/{self._full(key)}"

    def key_of(self, *, uri: str) -> str | None:
        """The key below this store's bucket and prefix that `uri` names, else None."""
        start = f"s3://{self._bucket}/{self._prefix}"
        if not uri.startswith(start) or len(uri) == len(start):
            return None
        return uri[len(start) :]

    async def put(
        self, *, name: objectstore.ImageName, data: bytes, metadata: Mapping[str, str]
    ) -> base.StoredObject:
        """One PutObject with type, metadata and a digest the store checks the body by."""
        request: PutObjectRequestTypeDef = {
            "Bucket": self._bucket,
            "Key": self._full(name.key),
            "Body": data,
            "ContentType": name.content_type,
            "Metadata": dict(metadata),
        }
        if not self._payload_signed:
            request["ContentMD5"] = await base.digest(data=data, function=_content_md5)
        async with self._errors():
            await self._client.put_object(**request)
        return base.StoredObject(
            uri=self.uri(key=name.key),
            key=name.key,
            size=len(data),
            content_type=name.content_type,
            metadata=dict(metadata),
        )

    async def head(self, *, key: str) -> base.StoredObject | None:
        """HeadObject; None on 404."""
        try:
            async with self._errors():
                answer = await self._client.head_object(Bucket=self._bucket, Key=self._full(key))
        except base.StoreError as error:
            if error.reason == "NotFound":
                return None
            raise
        return base.StoredObject(
            uri=self.uri(key=key),
            key=key,
            size=answer["ContentLength"],
            content_type=answer.get("ContentType", "application/octet-stream"),
            metadata=dict(answer.get("Metadata", {})),
        )

    async def read(self, *, key: str) -> AsyncIterator[bytes]:
        """GetObject, its body read in chunks."""
        async with self._errors():
            answer = await self._client.get_object(Bucket=self._bucket, Key=self._full(key))
            async with answer["Body"] as body:
                while chunk := await body.read(base.CHUNK_BYTES):
                    yield chunk

    async def presign(self, *, key: str, seconds: int) -> str | None:
        """A presigned GetObject URL (computed locally: no request to the store)."""
        async with self._errors():
            url: str = await self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._bucket, "Key": self._full(key)},
                ExpiresIn=seconds,
            )
        return url

    async def delete_prefix(self, *, prefix: str) -> int:
        """List the prefix, then DeleteObjects a page at a time."""
        deleted = 0
        async with self._errors():
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(
                Bucket=self._bucket, Prefix=self._full(prefix), PaginationConfig={"PageSize": 1000}
            ):
                found = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
                for start in range(0, len(found), _DELETE_BATCH):
                    chunk: Any = found[start : start + _DELETE_BATCH]
                    answer = await self._client.delete_objects(
                        Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True}
                    )
                    if errors := answer.get("Errors"):
                        first = errors[0]
                        raise base.StoreError(
                            store=self.name,
                            reason="Refused",
                            detail=f"deleting {first.get('Key')}: {first.get('Code')}",
                        )
                    deleted += len(chunk)
        return deleted

    async def check(self) -> None:
        """HeadBucket with the credentials."""
        async with self._errors():
            await self._client.head_bucket(Bucket=self._bucket)

    @contextlib.asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        """botocore's errors as StoreError with a reason; never a credential in them."""
        try:
            yield
        except botocore.exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _ACCESS_DENIED or status == 403:
                reason: base.Reason = "AccessDenied"
            elif status == 404 or code in ("NoSuchKey", "NoSuchBucket", "NotFound"):
                reason = "NotFound"
            elif status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
                reason = "Unreachable"
            else:
                reason = "Refused"
            raise base.StoreError(
                store=self.name, reason=reason, detail=f"{status or code} {code}".strip()
            ) from error
        except botocore.exceptions.NoCredentialsError as error:
            raise base.StoreError(
                store=self.name, reason="AccessDenied", detail="no credentials found"
            ) from error
        except (
            botocore.exceptions.BotoCoreError,
            aiohttp.ClientError,
            OSError,
            TimeoutError,
        ) as error:
            # Connection refused or reset, timeouts, DNS: the store is away for now.
            raise base.StoreError(
                store=self.name, reason="Unreachable", detail=type(error).__name__
            ) from error


def _content_md5(data: bytes) -> str:
    """The Content-MD5 header of `data`: the store checks the body against it."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
