"""Kopf's own records on our objects, kept small whatever the object holds.

Kopf writes two kinds of annotation on every object it handles: the last-handled
"essence" (by default a JSON copy of the spec, labels and annotations), against which it
detects changes, and one progress record per handler. The apiserver refuses an object
whose annotations pass 256 KiB in all, and a full copy of an ImageBatch at the CRD's
limits passes it alone: the patch was refused with 422, retried forever, and the batch
could never be deleted (its finalizer was never removed). So the essence is kept as a
digest, and a handler's error message as a bounded prefix.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

import kopf

from imagegen.api import meta

DIFFBASE_KEY = "last-handled-configuration"
MAX_MESSAGE_CHARACTERS = 1024
"""A handler's error message kept in its progress record: enough to read, never a copy
of the object (an apiserver error can quote a whole field)."""


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """The last-handled essence as its SHA-256 (about 80 bytes, whatever the object).

    Kopf compares the stored essence with the current one to decide whether update
    handlers run; equal digests mean equal essences, so that decision is unchanged. What
    is lost is the field-by-field `diff`, `old` and `new` given to handlers: no handler
    of ours reads them (each reconciles from the whole object); a handler that needs them
    (kopf.on.field) would need the essence itself, and its size bounded another way.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        canonical = json.dumps(essence, sort_keys=True, separators=(",", ":"))
        return cast(kopf.BodyEssence, {"digest": hashlib.sha256(canonical.encode()).hexdigest()})


class BoundedProgressStorage(kopf.AnnotationsProgressStorage):
    """Kopf's per-handler progress annotations, with the error message cut to a bound."""

    def store(
        self,
        *,
        key: kopf.HandlerId,
        record: kopf.ProgressRecord,
        body: kopf.Body,
        patch: kopf.Patch,
    ) -> None:
        message = record.get("message")
        if message is not None and len(message) > MAX_MESSAGE_CHARACTERS:
            record = cast(
                kopf.ProgressRecord,
                {**record, "message": message[: MAX_MESSAGE_CHARACTERS - 1] + "…"},
            )
        super().store(key=key, record=record, body=body, patch=patch)


def diffbase_storage() -> DigestDiffBaseStorage:
    """The operator's diff-base storage: a digest under our group's prefix."""
    return DigestDiffBaseStorage(prefix=meta.GROUP, key=DIFFBASE_KEY)


def progress_storage() -> BoundedProgressStorage:
    """The operator's progress storage: bounded records under our group's prefix."""
    return BoundedProgressStorage(prefix=meta.GROUP)
