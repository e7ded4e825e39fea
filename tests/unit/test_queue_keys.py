"""The queue's keyspace and inputs, without Redis."""

from __future__ import annotations

import pytest
from redis import crc

from imagegen.queue import core, keys, model


def test_pool_names_are_shared_or_dedicated_to_a_tenant() -> None:
    assert keys.dedicated(tenant="acme") == "dedicated-acme"
    assert keys.pool_name(keys.SHARED) == "shared"
    for bad in ("dedicated-{x}", "dedicated-", "private", "Shared"):
        with pytest.raises(ValueError, match="pool"):
            keys.Keyspace(pool=bad)


def test_every_key_and_channel_of_a_pool_carries_its_hash_tag() -> None:
    space = keys.Keyspace(pool="dedicated-acme")
    names = [
        *space.pool_keys(),
        space.lane(tier="standard", tenant="acme"),
        space.batch(uid="6f1c0a4e-0000-4000-8000-000000000001"),
        space.batch_items(uid="u1"),
        space.item(uid="u1", item_id="a-1"),
        space.events,
    ]

    assert all("{dedicated-acme}" in name for name in names)
    assert {crc.key_slot(name.encode()) for name in names} == {crc.key_slot(b"dedicated-acme")}
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("part", ["", "a:b", "{x}", "a b", "x" * 300])
def test_key_parts_that_could_collide_or_move_the_hash_tag_are_refused(part: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        keys.Keyspace(pool=keys.SHARED).item(uid="u1", item_id=part)


def test_a_batch_weight_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        model.BatchRef(uid="u1", tenant="acme", tier="standard", priority="normal", weight=0)


@pytest.mark.parametrize(
    ("data", "uid"),
    [
        (b'{"batch": "u1", "item": "a", "state": "Running", "attempts": 1}', "u1"),
        ('{"batch": "u1", "state": "Queued", "count": 3}', "u1"),
        (b'{"state": "Queued", "count": 3}', None),
        (b'{"batch": 7}', None),
        (b"1", None),
        (b"\xff not json", None),
    ],
)
def test_a_channel_message_names_its_batch_or_nothing(data: bytes | str, uid: str | None) -> None:
    assert core.batch_of_event(data) == uid
