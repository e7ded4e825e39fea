"""API keys resolve to tenants through the operator's digest index: current and previous
keys during a rotation, never a key past its expiry, never one that was deleted."""

import datetime
import json
from typing import Any

from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen.gateway import keyindex

NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)
CURRENT = "igk_" + "c" * 43
PREVIOUS = "igk_" + "p" * 43


def index(tenant: str, **keys: str | None) -> core_v1.ConfigMap:
    """The ConfigMap the operator publishes, from key -> expiry (None: no expiry)."""
    data: dict[str, Any] = {
        keyindex.digest(key): json.dumps({"tenant": tenant, "expiresAt": expires})
        for key, expires in keys.items()
    }
    return core_v1.ConfigMap(metadata=meta_v1.ObjectMeta(name=f"api-keys-{tenant}"), data=data)


def test_the_current_and_the_previous_key_both_resolve_until_the_previous_expires() -> None:
    keys = keyindex.KeyIndex()
    expires = (NOW + datetime.timedelta(hours=1)).isoformat()
    keys.replace([index("acme", **{CURRENT: None, PREVIOUS: expires})])
    assert keys.tenant_of(CURRENT, now=NOW) == "acme"
    assert keys.tenant_of(PREVIOUS, now=NOW) == "acme"
    later = NOW + datetime.timedelta(hours=1)
    assert keys.tenant_of(PREVIOUS, now=later) is None
    assert keys.tenant_of(CURRENT, now=later) == "acme"


def test_unknown_and_malformed_keys_resolve_to_nobody() -> None:
    keys = keyindex.KeyIndex()
    keys.replace([index("acme", **{CURRENT: None})])
    for key in ("igk_" + "x" * 43, "not-a-key", "", CURRENT + " ", keyindex.digest(CURRENT)):
        assert keys.tenant_of(key, now=NOW) is None


def test_a_deleted_index_and_a_relist_without_it_revoke_its_keys() -> None:
    keys = keyindex.KeyIndex()
    keys.replace([index("acme", **{CURRENT: None}), index("other", **{PREVIOUS: None})])
    keys.apply("DELETED", index("acme"))
    assert keys.tenant_of(CURRENT, now=NOW) is None
    keys.replace([])
    assert keys.tenant_of(PREVIOUS, now=NOW) is None


def test_a_modified_index_replaces_the_tenants_keys() -> None:
    keys = keyindex.KeyIndex()
    keys.replace([index("acme", **{PREVIOUS: None})])
    keys.apply("MODIFIED", index("acme", **{CURRENT: None}))
    assert keys.tenant_of(CURRENT, now=NOW) == "acme"
    assert keys.tenant_of(PREVIOUS, now=NOW) is None


def test_a_hand_edited_entry_is_skipped_and_the_rest_still_work() -> None:
    keys = keyindex.KeyIndex()
    broken = index("acme", **{CURRENT: None})
    assert broken.data is not None
    broken.data["not-a-digest"] = "{}"
    broken.data[keyindex.digest(PREVIOUS)] = "not json"
    keys.replace([broken])
    assert keys.tenant_of(CURRENT, now=NOW) == "acme"
    assert keys.tenant_of(PREVIOUS, now=NOW) is None
    assert len(keys) == 1
