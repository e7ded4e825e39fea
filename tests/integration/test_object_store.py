"""The S3 store against a real S3-compatible server (versitygw): put with metadata, head,
read, presigned GET, delete by prefix, the errors of a stopped store and wrong keys, and
a body damaged on its way (over http and over https) refused by the store."""

from __future__ import annotations

import asyncio
import hashlib
import pathlib
import ssl
import urllib.parse
from collections.abc import AsyncIterator

import aiobotocore.session
import httpx
import pytest
from aiobotocore import config as aioconfig

from imagegen.api import objectstore
from imagegen.localcluster import pki, s3server
from imagegen.storage import base, stores
from tests.integration import s3fixtures, storeproxy

pytestmark = pytest.mark.integration

NAME = objectstore.ImageName(tenant="acme", batch_uid="uid-1", item_id="a1", format="png")
DATA = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400
META = {"tenant": "acme", "batch": "uid-1", "item": "a1", "provider": "local"}


@pytest.fixture
async def store(s3_server: s3server.LocalS3) -> AsyncIterator[base.Store]:
    async with stores.open_store(
        config=s3_server.config(prefix="imgs"), credentials=s3fixtures.credentials(s3_server)
    ) as opened:
        yield opened


async def read_all(store: base.Store, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key=key)])


async def test_an_image_is_stored_under_its_key_with_type_and_metadata(
    store: base.Store, s3_server: s3server.LocalS3
) -> None:
    stored = await store.put(name=NAME, data=DATA, metadata=META)
    assert stored.uri == "s3://images/imgs/acme/uid-1/a1.png"
    assert s3_server.object_path("imgs/acme/uid-1/a1.png").read_bytes() == DATA
    found = await store.head(key=NAME.key)
    assert found is not None
    assert (found.size, found.content_type) == (len(DATA), "image/png")
    assert found.metadata == META
    assert store.key_of(uri=stored.uri) == NAME.key
    assert await read_all(store, NAME.key) == DATA


async def test_a_presigned_url_reads_the_bytes_without_credentials(store: base.Store) -> None:
    await store.put(name=NAME, data=DATA, metadata=META)
    url = await store.presign(key=NAME.key, seconds=60)
    assert url is not None
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(url)
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).digest() == hashlib.sha256(DATA).digest()
    assert answer.headers["content-type"] == "image/png"


async def test_a_missing_object_has_no_head_and_reads_as_not_found(store: base.Store) -> None:
    assert await store.head(key="acme/uid-1/none.png") is None
    with pytest.raises(base.StoreError) as raised:
        await read_all(store, "acme/uid-1/none.png")
    assert raised.value.reason == "NotFound"


async def test_deleting_a_batch_prefix_removes_its_objects_only(store: base.Store) -> None:
    for item in ("a1", "a2", "a3"):
        name = objectstore.ImageName(tenant="acme", batch_uid="uid-1", item_id=item, format="png")
        await store.put(name=name, data=DATA, metadata=META)
    other = objectstore.ImageName(tenant="acme", batch_uid="uid-2", item_id="a1", format="png")
    await store.put(name=other, data=DATA, metadata=META)
    prefix = objectstore.batch_prefix(tenant="acme", batch_uid="uid-1")
    assert await store.delete_prefix(prefix=prefix) == 3
    assert await store.head(key=NAME.key) is None
    assert await store.head(key=other.key) is not None
    assert await store.delete_prefix(prefix=prefix) == 0


async def test_wrong_credentials_are_access_denied_and_the_error_names_no_secret(
    s3_server: s3server.LocalS3,
) -> None:
    wrong = stores.Credentials(access_key_id=s3_server.access_key_id, secret_access_key="nope-x")
    async with stores.open_store(config=s3_server.config(), credentials=wrong) as store:
        with pytest.raises(base.StoreError) as raised:
            await store.put(name=NAME, data=DATA, metadata=META)
    assert raised.value.reason == "AccessDenied"
    assert s3_server.endpoint in str(raised.value)
    assert s3_server.secret_access_key not in str(raised.value)
    assert "nope-x" not in str(raised.value)


async def test_a_stopped_store_is_unreachable_until_it_returns(
    store: base.Store, s3_server: s3server.LocalS3
) -> None:
    s3_server.stop()
    with pytest.raises(base.StoreError) as raised:
        await store.put(name=NAME, data=DATA, metadata=META)
    assert raised.value.reason == "Unreachable"
    s3_server.restart()
    await store.put(name=NAME, data=DATA, metadata=META)
    assert await read_all(store, NAME.key) == DATA


async def test_an_upload_cut_off_midway_leaves_no_object(
    store: base.Store, s3_server: s3server.LocalS3
) -> None:
    """What a worker killed mid-upload does to the store: a PUT whose sender stops after
    half its body. The URL is presigned by botocore; the request is written by hand only
    so that it can be cut off."""
    session = aiobotocore.session.get_session()
    async with session.create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.access_key_id,
        aws_secret_access_key=s3_server.secret_access_key,
        config=aioconfig.AioConfig(s3={"addressing_style": "path"}),
    ) as client:
        url = await client.generate_presigned_url(
            "put_object", Params={"Bucket": s3_server.bucket, "Key": "imgs/acme/uid-1/cut.png"}
        )
    target = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection("127.0.0.1", s3_server.port)
    head = (
        f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"Content-Length: {len(DATA)}\r\n\r\n"
    )
    writer.write(head.encode() + DATA[: len(DATA) // 2])
    await writer.drain()
    writer.write_eof()
    # The server is done with the request once it has answered or closed.
    await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()

    assert await store.head(key="acme/uid-1/cut.png") is None
    folder = s3_server.object_path("imgs/acme/uid-1")
    assert not folder.exists() or not [p for p in folder.iterdir() if p.name.startswith("cut")]


@pytest.fixture
def proxy_tls(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A serving certificate for 127.0.0.1, from a CA that botocore is told to trust."""
    issued = pki.write_cluster_pki(directory=tmp_path / "pki")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(issued.ca_cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.serving_cert, issued.serving_key)
    return context


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_body_damaged_on_the_way_is_refused_and_leaves_no_object(
    s3_server: s3server.LocalS3, proxy_tls: ssl.SSLContext, scheme: str
) -> None:
    """Over http the store checks the body against its signed SHA-256, over https (a TLS
    link that ends before the store) against Content-MD5: either way a flipped bit is
    refused, while the same link without damage stores the image whole."""
    tls = proxy_tls if scheme == "https" else None
    for corrupt in (True, False):
        link = storeproxy.StoreProxy(upstream_port=s3_server.port, corrupt=corrupt, tls=tls)
        await link.start()
        config = objectstore.ObjectStore(url="s3://images", endpoint=link.endpoint, path_style=True)
        try:
            async with stores.open_store(
                config=config, credentials=s3fixtures.credentials(s3_server)
            ) as through_link:
                if corrupt:
                    with pytest.raises(base.StoreError) as raised:
                        await through_link.put(name=NAME, data=DATA, metadata=META)
                    assert raised.value.reason == "Refused"
                    assert not s3_server.object_path(NAME.key).exists()
                else:
                    await through_link.put(name=NAME, data=DATA, metadata=META)
                    assert await read_all(through_link, NAME.key) == DATA
        finally:
            await link.stop()
