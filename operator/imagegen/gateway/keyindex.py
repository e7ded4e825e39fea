"""API keys -> tenants, from the digest index the operator publishes.

The operator writes one ConfigMap per tenant (label `imagegen.semantest.io/api-key-index`)
in its namespace: SHA-256 digest of each active key -> {tenant, expiresAt}. During a
rotation there are two entries, the previous key's with an expiry. The gateway never sees
a key it did not receive, and never stores one.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
import re
from typing import Any

from imagegen.api import meta

logger = logging.getLogger(__name__)

INDEX_LABEL = f"{meta.GROUP}/api-key-index"
KEY_PATTERN = re.compile(r"igk_[A-Za-z0-9_-]{16,128}")
"""What a key looks like (the operator makes igk_ + 43 url-safe characters)."""
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Entry:
    """One active key, by digest."""

    digest: str
    tenant: str
    expires_at: datetime.datetime | None


def digest(key: str) -> str:
    """SHA-256 of a key as hex, as the operator publishes it."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyIndex:
    """The digests of every active key, fed by a Reflector of the index ConfigMaps."""

    def __init__(self) -> None:
        self._by_configmap: dict[str, dict[str, Entry]] = {}
        self._by_digest: dict[str, Entry] = {}

    def replace(self, objects: list[Any]) -> None:
        self._by_configmap = {_name(obj): _entries(obj) for obj in objects}
        self._rebuild()

    def apply(self, event: str, obj: Any) -> None:
        if event == "DELETED":
            self._by_configmap.pop(_name(obj), None)
        else:
            self._by_configmap[_name(obj)] = _entries(obj)
        self._rebuild()

    def tenant_of(self, key: str, *, now: datetime.datetime) -> str | None:
        """The tenant whose active key this is, or None (unknown, expired, malformed)."""
        if not KEY_PATTERN.fullmatch(key):
            return None
        presented = digest(key)
        entry = self._by_digest.get(presented)
        # The lookup above compares digests, never keys, so its timing tells a caller
        # nothing about a real key; the final equality is constant-time all the same.
        if entry is None or not hmac.compare_digest(entry.digest, presented):
            return None
        if entry.expires_at is not None and now >= entry.expires_at:
            return None
        return entry.tenant

    def __len__(self) -> int:
        return len(self._by_digest)

    def _rebuild(self) -> None:
        self._by_digest = {
            entry.digest: entry
            for entries in self._by_configmap.values()
            for entry in entries.values()
        }


def _name(obj: Any) -> str:
    return str(obj.metadata.name)


def _entries(obj: Any) -> dict[str, Entry]:
    entries = {}
    for key_digest, raw in (obj.data or {}).items():
        try:
            entry = _entry(key_digest, raw)
        except (ValueError, TypeError, KeyError) as error:
            # A hand-edited entry is skipped, not fatal: the other tenants must keep working.
            logger.warning("API key index %s: skipping an entry: %s", _name(obj), error)
            continue
        entries[entry.digest] = entry
    return entries


def _entry(key_digest: str, raw: str) -> Entry:
    if not _HEX_DIGEST.fullmatch(key_digest):
        raise ValueError("key is not a SHA-256 hex digest")
    value = json.loads(raw)
    expires = value.get("expiresAt")
    return Entry(
        digest=key_digest,
        tenant=str(value["tenant"]),
        expires_at=datetime.datetime.fromisoformat(expires) if expires else None,
    )
