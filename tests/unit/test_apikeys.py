"""API keys: made once, rotated on request with a grace period, then the old one dropped."""

import datetime

from imagegen.controller import apikeys

NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)
GRACE = datetime.timedelta(hours=24)


def test_a_first_key_is_made_with_the_recognisable_prefix() -> None:
    keys = apikeys.plan(existing=None, rotation="", now=NOW, grace=GRACE)
    assert keys.current.startswith("igk_")
    assert len(keys.current) > 40
    assert keys.previous is None


def test_nothing_changes_while_the_rotation_annotation_stays_the_same() -> None:
    keys = apikeys.plan(existing=None, rotation="r1", now=NOW, grace=GRACE)
    assert apikeys.plan(existing=keys, rotation="r1", now=NOW, grace=GRACE) is keys


def test_a_new_rotation_value_makes_a_new_key_and_keeps_the_old_one_for_the_grace() -> None:
    first = apikeys.plan(existing=None, rotation="", now=NOW, grace=GRACE)
    rotated = apikeys.plan(existing=first, rotation="2026-11-26", now=NOW, grace=GRACE)
    assert rotated.current != first.current
    assert rotated.previous == first.current
    assert rotated.previous_expires_at == NOW + GRACE


def test_the_old_key_is_dropped_once_its_grace_is_over() -> None:
    first = apikeys.plan(existing=None, rotation="", now=NOW, grace=GRACE)
    rotated = apikeys.plan(existing=first, rotation="r2", now=NOW, grace=GRACE)
    later = apikeys.plan(existing=rotated, rotation="r2", now=NOW + GRACE, grace=GRACE)
    assert later.current == rotated.current
    assert later.previous is None


def test_the_gateway_gets_a_sha256_digest_not_the_key() -> None:
    digest = apikeys.digest("igk_example")
    assert len(digest) == 64
    assert "igk_" not in digest
