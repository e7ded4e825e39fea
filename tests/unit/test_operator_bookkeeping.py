"""Kopf's records on our objects stay small whatever the object holds."""

from __future__ import annotations

import copy
import json
from typing import Any

import kopf

from imagegen.api import meta
from imagegen.controller import bookkeeping
from tests import builders

DIFFBASE = f"{meta.GROUP}/{bookkeeping.DIFFBASE_KEY}"


def largest_cjk_batch() -> dict[str, Any]:
    return (
        builders.make_batch("big")
        .annotation("note", "注" * 60_000)
        .items(100, prompt="夜" * 150, negative_prompt="明" * 150)
        .obj()
    )


def stored_essence(obj: dict[str, Any]) -> str:
    storage = bookkeeping.diffbase_storage()
    body = kopf.Body(obj)
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    value: str = patch["metadata"]["annotations"][DIFFBASE]
    return value


def test_the_stored_essence_of_the_largest_batch_is_a_short_digest() -> None:
    assert len(stored_essence(largest_cjk_batch())) < 100


def test_the_digest_changes_with_the_spec_and_the_annotations_only() -> None:
    obj = largest_cjk_batch()
    cancelled = copy.deepcopy(obj)
    cancelled["spec"]["cancel"] = True
    rotated = copy.deepcopy(obj)
    rotated["metadata"]["annotations"]["note"] = "rotated"
    with_status = copy.deepcopy(obj) | {"status": {"phase": "Queued"}}
    assert stored_essence(with_status) == stored_essence(obj)
    assert stored_essence(cancelled) != stored_essence(obj)
    assert stored_essence(rotated) != stored_essence(obj)


def test_a_stored_essence_reads_back_as_what_build_makes_so_nothing_looks_changed() -> None:
    storage = bookkeeping.diffbase_storage()
    obj = largest_cjk_batch()
    obj["metadata"].setdefault("annotations", {})[DIFFBASE] = stored_essence(obj)
    body = kopf.Body(obj)
    assert storage.fetch(body=body) == storage.build(body=body)


def test_a_long_handler_error_is_kept_as_a_bounded_prefix() -> None:
    storage = bookkeeping.progress_storage()
    patch = kopf.Patch()
    record: kopf.ProgressRecord = {"retries": 3, "message": "spec.items: " + "夜" * 100_000}
    storage.store(key=kopf.HandlerId("admit"), record=record, body=kopf.Body({}), patch=patch)
    stored = json.loads(patch["metadata"]["annotations"][f"{meta.GROUP}/admit"])
    assert len(stored["message"]) == bookkeeping.MAX_MESSAGE_CHARACTERS
    assert stored["message"].startswith("spec.items: 夜")
    assert stored["retries"] == 3
