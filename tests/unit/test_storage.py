"""The folder store and image names: one file per item under `<tenant>/<batch uid>/`,
written atomically with its metadata beside it; where an image is hashed."""

import os
import pathlib
import threading

import pytest

from imagegen.api import objectstore
from imagegen.storage import base, files

UID = "5f0c6a4e-2d1b-4c6e-9a51-3b8f0e7d2c11"
NAME = objectstore.ImageName(tenant="acme", batch_uid=UID, item_id="a1", format="png")
META = {"tenant": "acme", "batch": UID, "item": "a1", "provider": "local"}


@pytest.fixture
def store(tmp_path: pathlib.Path) -> files.FileStore:
    return files.FileStore(root=tmp_path / "images")


def test_an_item_is_keyed_by_tenant_batch_uid_and_id_with_its_format() -> None:
    assert NAME.key == f"acme/{UID}/a1.png"
    assert NAME.content_type == "image/png"
    jpeg = objectstore.ImageName(tenant="acme", batch_uid=UID, item_id="a1", format="jpeg")
    assert (jpeg.key, jpeg.content_type) == (f"acme/{UID}/a1.jpg", "image/jpeg")
    assert objectstore.batch_prefix(tenant="acme", batch_uid=UID) == f"acme/{UID}/"


@pytest.mark.parametrize("bad", ["../a1", "a/b", "a\\b", "", ".", "..", ".hidden", "a\x00"])
def test_names_that_are_not_plain_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"item id: .* is not a plain name"):
        objectstore.ImageName(tenant="acme", batch_uid=UID, item_id=bad, format="png")
    with pytest.raises(ValueError, match=r"batch uid: .* is not a plain name"):
        objectstore.ImageName(tenant="acme", batch_uid=bad, item_id="a1", format="png")
    with pytest.raises(ValueError, match=r"tenant: .* is not a plain name"):
        objectstore.ImageName(tenant=bad, batch_uid=UID, item_id="a1", format="png")


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://imagegen-us/images/v1", "imagegen-us", "images/v1"),
        ("s3://imagegen-us", "imagegen-us", ""),
        ("file:///var/lib/images", "", "/var/lib/images"),
    ],
)
def test_a_store_url_names_its_bucket_and_prefix(url: str, bucket: str, prefix: str) -> None:
    location = objectstore.ObjectStore(url=url).location()
    assert (location.bucket, location.prefix) == (bucket, prefix)


async def test_putting_writes_the_bytes_and_metadata_and_returns_a_file_uri(
    store: files.FileStore,
) -> None:
    assert await store.head(key=NAME.key) is None
    stored = await store.put(name=NAME, data=b"image", metadata=META)
    path = store.root / "acme" / UID / "a1.png"
    assert stored.uri == path.as_uri()
    assert path.read_bytes() == b"image"
    found = await store.head(key=NAME.key)
    assert found is not None
    assert (found.size, found.content_type, dict(found.metadata)) == (5, "image/png", META)
    assert store.key_of(uri=stored.uri) == NAME.key
    assert b"".join([chunk async for chunk in store.read(key=NAME.key)]) == b"image"


async def test_putting_the_same_item_twice_leaves_one_image_with_the_last_bytes(
    store: files.FileStore,
) -> None:
    await store.put(name=NAME, data=b"first", metadata=META)
    await store.put(name=NAME, data=b"second", metadata=META)
    folder = store.root / "acme" / UID
    assert [path.name for path in folder.iterdir() if not path.name.startswith(".")] == ["a1.png"]
    assert (folder / "a1.png").read_bytes() == b"second"


async def test_a_failed_write_leaves_the_previous_image_whole_and_no_temporary_file(
    store: files.FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put(name=NAME, data=b"complete image", metadata=META)

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(base.StoreError, match=r"No space left"):
        await store.put(name=NAME, data=b"half", metadata=META)
    folder = store.root / "acme" / UID
    assert sorted(path.name for path in folder.iterdir()) == [".a1.png.meta", "a1.png"]
    assert (folder / "a1.png").read_bytes() == b"complete image"


async def test_an_image_without_its_metadata_counts_as_not_stored(store: files.FileStore) -> None:
    path = store.root / "acme" / UID / "a1.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"put there by someone else")
    assert await store.head(key=NAME.key) is None


async def test_stored_images_are_readable_by_other_processes_on_the_volume(
    store: files.FileStore,
) -> None:
    await store.put(name=NAME, data=b"image", metadata=META)
    mode = (store.root / "acme" / UID / "a1.png").stat().st_mode & 0o777
    assert mode == files.FILE_MODE


async def test_deleting_a_batch_prefix_removes_its_folder_and_counts_its_images(
    store: files.FileStore,
) -> None:
    await store.put(name=NAME, data=b"image", metadata=META)
    other = objectstore.ImageName(tenant="acme", batch_uid="other", item_id="a1", format="png")
    await store.put(name=other, data=b"image", metadata=META)
    assert (
        await store.delete_prefix(prefix=objectstore.batch_prefix(tenant="acme", batch_uid=UID))
        == 1
    )
    assert not (store.root / "acme" / UID).exists()
    assert await store.head(key=other.key) is not None


def test_keys_and_uris_outside_the_root_are_refused(store: files.FileStore) -> None:
    with pytest.raises(ValueError, match="is not below"):
        store.path(key="../../etc/passwd")
    assert store.key_of(uri="file:///etc/passwd") is None
    assert store.key_of(uri="s3://images/acme/x.png") is None


def test_a_relative_root_still_gives_absolute_uris(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = files.FileStore(root=pathlib.Path("images"))
    assert store.uri(key=NAME.key).startswith("file:///")


async def test_reading_a_missing_image_is_not_found(store: files.FileStore) -> None:
    with pytest.raises(base.StoreError) as raised:
        [chunk async for chunk in store.read(key=NAME.key)]
    assert raised.value.reason == "NotFound"


def _hashed_by(data: bytes) -> int:
    return threading.get_ident()


async def test_a_small_image_is_hashed_on_the_loop_and_a_large_one_in_a_thread() -> None:
    loop_thread = threading.get_ident()
    small = await base.digest(data=bytes(base.INLINE_HASH_BYTES), function=_hashed_by)
    large = await base.digest(data=bytes(base.INLINE_HASH_BYTES + 1), function=_hashed_by)
    assert small == loop_thread
    assert large != loop_thread
