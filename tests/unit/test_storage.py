"""Local storage: one file per item, named from batch uid and item id, written atomically."""

import os
import pathlib

import pytest

from imagegen.worker import storage

UID = "5f0c6a4e-2d1b-4c6e-9a51-3b8f0e7d2c11"


@pytest.fixture
def store(tmp_path: pathlib.Path) -> storage.LocalStorage:
    return storage.LocalStorage(root=tmp_path / "images")


def test_an_item_lives_under_its_batch_uid_named_by_its_id(
    store: storage.LocalStorage, tmp_path: pathlib.Path
) -> None:
    path = store.path_for(batch_uid=UID, item_id="a1", format="png")
    assert path == tmp_path / "images" / UID / "a1.png"
    assert store.path_for(batch_uid=UID, item_id="a1", format="jpeg").name == "a1.jpg"
    assert store.path_for(batch_uid=UID, item_id="a1", format="webp").name == "a1.webp"


@pytest.mark.parametrize("bad", ["../a1", "a/b", "a\\b", "", ".", "..", ".hidden", "a\x00"])
def test_ids_that_are_not_plain_names_are_refused(store: storage.LocalStorage, bad: str) -> None:
    with pytest.raises(ValueError, match=r"item id: .* is not a plain file name"):
        store.path_for(batch_uid=UID, item_id=bad, format="png")
    with pytest.raises(ValueError, match=r"batch uid: .* is not a plain file name"):
        store.path_for(batch_uid=bad, item_id="a1", format="png")


async def test_saving_writes_the_bytes_and_returns_a_file_uri(store: storage.LocalStorage) -> None:
    assert not await store.exists(batch_uid=UID, item_id="a1", format="png")
    uri = await store.save(batch_uid=UID, item_id="a1", format="png", data=b"image")
    path = store.path_for(batch_uid=UID, item_id="a1", format="png")
    assert uri == path.as_uri()
    assert uri.startswith("file:///")
    assert path.read_bytes() == b"image"
    assert await store.exists(batch_uid=UID, item_id="a1", format="png")


async def test_saving_the_same_item_twice_leaves_one_file_with_the_last_bytes(
    store: storage.LocalStorage,
) -> None:
    await store.save(batch_uid=UID, item_id="a1", format="png", data=b"first")
    await store.save(batch_uid=UID, item_id="a1", format="png", data=b"second")
    assert [path.name for path in (store.root / UID).iterdir()] == ["a1.png"]
    assert (store.root / UID / "a1.png").read_bytes() == b"second"


async def test_a_failed_write_leaves_the_previous_image_whole_and_no_temporary_file(
    store: storage.LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.save(batch_uid=UID, item_id="a1", format="png", data=b"complete image")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match=r"No space left"):
        await store.save(batch_uid=UID, item_id="a1", format="png", data=b"half")
    assert [path.name for path in (store.root / UID).iterdir()] == ["a1.png"]
    assert (store.root / UID / "a1.png").read_bytes() == b"complete image"


async def test_saved_images_are_readable_by_other_processes_on_the_volume(
    store: storage.LocalStorage,
) -> None:
    await store.save(batch_uid=UID, item_id="a1", format="png", data=b"image")
    mode = (store.root / UID / "a1.png").stat().st_mode & 0o777
    assert mode == storage.FILE_MODE


def test_a_relative_root_still_gives_absolute_uris(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = storage.LocalStorage(root=pathlib.Path("images"))
    assert store.path_for(batch_uid=UID, item_id="a1", format="png").is_absolute()
