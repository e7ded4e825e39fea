"""How the gateway finds an item's image (only inside the batch's own prefix of a store
it knows) and streams a zip of a batch without holding it."""

import datetime
import io
import pathlib
import zipfile

import pytest

from imagegen.api import objectstore
from imagegen.gateway import imagefetch, imagestores
from imagegen.gateway.routes import batchimages
from imagegen.storage import files

UID = "5f0c6a4e-2d1b-4c6e-9a51-3b8f0e7d2c11"
PREFIX = objectstore.batch_prefix(tenant="acme", batch_uid=UID)


@pytest.fixture
def folder(tmp_path: pathlib.Path) -> files.FileStore:
    return files.FileStore(root=tmp_path)


def stores(folder: files.FileStore) -> imagestores.ImageStores:
    return imagestores.ImageStores(by_region={}, configs={}, fallback=folder)


def test_an_image_is_found_only_below_its_own_batchs_prefix(folder: files.FileStore) -> None:
    found = stores(folder)
    inside = folder.uri(key=f"{PREFIX}a1.png")
    located = found.locate(uri=inside, region="us-east", prefix=PREFIX)
    assert located is not None
    assert (located.key, located.presign_seconds) == (f"{PREFIX}a1.png", None)
    other_batch = folder.uri(key="acme/other/a1.png")
    other_tenant = folder.uri(key=f"evil/{UID}/a1.png")
    deeper = folder.uri(key=f"{PREFIX}x/a1.png")
    for uri in (other_batch, other_tenant, deeper, "file:///etc/passwd", "s3://b/acme/a1.png"):
        assert found.locate(uri=uri, region="us-east", prefix=PREFIX) is None


def batch_object(*results: dict[str, str]) -> dict[str, object]:
    return {
        "metadata": {"uid": UID, "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {"tenant": "acme", "items": [{"id": r["id"]} for r in results]},
        "status": {"items": list(results)},
    }


def test_only_succeeded_items_with_a_uri_have_an_image_in_item_order() -> None:
    obj = batch_object(
        {"id": "a1", "state": "Succeeded", "uri": "s3://b/acme/x/a1.png"},
        {"id": "a2", "state": "Failed"},
        {"id": "a3", "state": "Succeeded", "uri": "s3://b/acme/x/a3.jpg"},
    )
    images = imagefetch.succeeded_images(obj)
    assert [(i.item_id, i.file_name, i.content_type) for i in images] == [
        ("a1", "a1.png", "image/png"),
        ("a3", "a3.jpg", "image/jpeg"),
    ]


async def test_a_batch_zip_holds_every_image_byte_for_byte(folder: files.FileStore) -> None:
    data = {f"a{n}": bytes([n]) * (300_000 + n) for n in range(3)}
    located = []
    for item_id, content in data.items():
        name = objectstore.ImageName(tenant="acme", batch_uid=UID, item_id=item_id, format="png")
        stored = await folder.put(name=name, data=content, metadata={})
        image = imagefetch.Image(item_id=item_id, uri=stored.uri)
        place = stores(folder).locate(uri=stored.uri, region=None, prefix=PREFIX)
        assert place is not None
        located.append((image, place))
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    chunks = [chunk async for chunk in batchimages.zip_stream(located, when=when)]
    # Streamed: the zip arrives in pieces no larger than a read of the store plus headers.
    assert len(chunks) > len(data)
    assert max(len(chunk) for chunk in chunks) <= 256 * 1024 + 1024
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert sorted(archive.namelist()) == [f"{item_id}.png" for item_id in sorted(data)]
        for item_id, content in data.items():
            assert archive.read(f"{item_id}.png") == content
