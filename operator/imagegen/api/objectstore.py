"""Where a region keeps its images, and how an image is named there: the contract the
operator's config, the workers, the gateway and the operator's cleanup share.

A store is a URL: `file:///abs/path` (the local stack, single-node trials) or
`s3://bucket[/prefix]` for any S3-compatible service (AWS S3, GCS's S3 API, MinIO, Ceph
RGW), reached at `endpoint` with the credentials of a Secret. Every image is the object
`<prefix>/<tenant>/<batch uid>/<item id>.<ext>`: one name per item, so a re-run item
overwrites its own object, and one prefix per batch, so a batch is deleted as a prefix.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Annotated, Final, Literal

import pydantic

from imagegen.api import imagebatch, meta

EXTENSIONS: Final[dict[imagebatch.Format, str]] = {"png": "png", "jpeg": "jpg", "webp": "webp"}
CONTENT_TYPES: Final[dict[str, str]] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
"""Content type by extension: what an object is stored and served as."""

ACCESS_KEY_ID: Final = "accessKeyId"
"""Key of the access key id in a store's credentials Secret (and its file when mounted)."""
SECRET_ACCESS_KEY: Final = "secretAccessKey"  # noqa: S105 - a key name, not a secret
"""Key of the secret access key in a store's credentials Secret."""

METADATA_FIELDS: Final = ("tenant", "batch", "item", "provider", "sha256", "width", "height")
"""User metadata on every image object (S3 `x-amz-meta-*`): who it belongs to, what made
it, its SHA-256 and its size in pixels, so a re-delivered item is completed from the object
alone, without reading it back."""

# One plain path component: no separators, and never "." or "..", because a name must
# start with a letter or digit. Tenant names, batch uids and item ids all fit.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_URL = r"^(file:///.*|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?)$"

Delivery = Literal["redirect", "stream"]


class ObjectStore(meta.Model):
    """One region's object store."""

    url: Annotated[str, pydantic.Field(pattern=_URL)] = "file:///var/lib/imagegen/images"
    """`file:///path` or `s3://bucket[/prefix]`. The default is the worker pod's own volume,
    which no other process reads: set an S3 store for images that outlive a pod."""
    endpoint: Annotated[str, pydantic.Field(pattern=r"^https?://[^\s/]+(/.*)?$")] | None = None
    """S3 API endpoint (e.g. `https://storage.googleapis.com`, `http://minio.store:9000`);
    None means AWS S3 for `region`."""
    region: Annotated[str, pydantic.Field(pattern=r"^[a-z0-9-]{1,32}$")] = "us-east-1"
    """Signing region of the S3 API (`auto` or any value for most non-AWS services)."""
    path_style: bool = False
    """Address buckets as `endpoint/bucket/key` (MinIO, versitygw, Ceph) instead of
    `bucket.endpoint/key` (AWS, GCS)."""
    credentials_secret: meta.DnsLabel | None = None
    """Secret holding `accessKeyId` and `secretAccessKey`: in the operator's namespace for
    the operator and the gateway, in the workers namespace of the region for its workers.
    None: the client's default chain (an IAM role of the pod, workload identity)."""
    presign_seconds: Annotated[int, pydantic.Field(ge=10, le=86_400)] = 300
    """How long a link the gateway hands out (302 to a presigned URL) stays valid."""
    timeout_seconds: Annotated[float, pydantic.Field(gt=0, le=120)] = 10.0
    """Bound on one request to the store (connect and each read)."""

    @property
    def scheme(self) -> Literal["file", "s3"]:
        """`file` or `s3`."""
        return "file" if self.url.startswith("file://") else "s3"

    def location(self) -> Location:
        """The bucket (empty for file://) and the key prefix, or the root folder."""
        parsed = urllib.parse.urlsplit(self.url)
        if self.scheme == "file":
            return Location(bucket="", prefix=urllib.parse.unquote(parsed.path))
        return Location(bucket=parsed.netloc, prefix=parsed.path.strip("/"))

    def describe(self) -> str:
        """How logs and conditions name the store: its URL and endpoint, no credentials."""
        return self.url if self.endpoint is None else f"{self.url} at {self.endpoint}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Location:
    """Where a store's objects live."""

    bucket: str
    prefix: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageName:
    """One item's image, named by tenant, batch uid and item id."""

    tenant: str
    batch_uid: str
    item_id: str
    format: imagebatch.Format

    def __post_init__(self) -> None:
        for field, value in (
            ("tenant", self.tenant),
            ("batch uid", self.batch_uid),
            ("item id", self.item_id),
        ):
            check_name(field=field, value=value)

    @property
    def extension(self) -> str:
        """File extension of the format."""
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        """The MIME type the object is stored with."""
        return CONTENT_TYPES[self.extension]

    @property
    def key(self) -> str:
        """`<tenant>/<batch uid>/<item id>.<ext>`, below the store's prefix."""
        return f"{batch_prefix(tenant=self.tenant, batch_uid=self.batch_uid)}{self.file_name}"

    @property
    def file_name(self) -> str:
        """`<item id>.<ext>`: the name inside the batch (and inside a zip of it)."""
        return f"{self.item_id}.{self.extension}"


def batch_prefix(*, tenant: str, batch_uid: str) -> str:
    """`<tenant>/<batch uid>/`: every object of one batch, below the store's prefix."""
    check_name(field="tenant", value=tenant)
    check_name(field="batch uid", value=batch_uid)
    return f"{tenant}/{batch_uid}/"


def check_name(*, field: str, value: str) -> None:
    """ValueError naming `field` unless `value` is one plain path component."""
    if not _SAFE_NAME.fullmatch(value):
        raise ValueError(
            f"{field}: {value!r} is not a plain name (letters, digits, '.', '_', '-', "
            "starting with a letter or digit, at most 128 characters)"
        )
