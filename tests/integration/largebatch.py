"""The largest valid ImageBatch, in ASCII (with the characters JSON encoders escape) and in
CJK text, and how to tell that the operator has handled it."""

from __future__ import annotations

from typing import Any

import lightkube

from imagegen import resources
from imagegen.api import imagebatch, meta
from imagegen.controller import bookkeeping
from tests.integration import waiting

ANNOTATIONS_LIMIT = 256 * 1024
"""The apiserver's limit on all annotations of an object, in bytes."""

ALPHABETS = {
    # `<`, `>` and `&` take 6 bytes in kubectl's copy; `"` and `\` take 2.
    "ascii": 'a <lighthouse> & "sea" at \\dawn ',
    "cjk": "夜明けの灯台と静かな海、遠くの船。",
}


def text(alphabet: str, length: int) -> str:
    pattern = ALPHABETS[alphabet]
    return (pattern * (length // len(pattern) + 1))[:length]


def largest_items(alphabet: str, *, extra: int = 0) -> list[dict[str, Any]]:
    """100 items with 63-character ids whose prompts and negative prompts hold exactly
    MAX_PROMPT_CHARACTERS (+ extra) characters; the first item's are at their own limit."""
    longest = imagebatch.MAX_PROMPT_LENGTH
    rest = imagebatch.MAX_PROMPT_CHARACTERS + extra - 2 * longest
    per_item, spare = divmod(rest, imagebatch.MAX_ITEMS - 1)
    lengths = [(longest, longest)] + [
        (per_item // 2 + (spare if n == 0 else 0), per_item - per_item // 2)
        for n in range(imagebatch.MAX_ITEMS - 1)
    ]
    return [
        {
            "id": f"{n:03d}" + "x" * 60,
            "prompt": text(alphabet, prompt),
            "negativePrompt": text(alphabet, negative),
            "seed": 4_294_967_295,
            "size": "64x64",
        }
        for n, (prompt, negative) in enumerate(lengths)
    ]


def batch_manifest(name: str, tenant: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": meta.API_VERSION,
        "kind": "ImageBatch",
        "metadata": {"name": name, "namespace": f"tenant-{tenant}"},
        "spec": {"tenant": tenant, "items": items},
    }


def annotation_bytes(obj: dict[str, Any]) -> int:
    annotations = obj["metadata"].get("annotations") or {}
    return sum(len(key.encode()) + len(value.encode()) for key, value in annotations.items())


def wait_handled(kube: lightkube.Client, tenant: str, name: str) -> dict[str, Any]:
    """The batch once dispatched and once Kopf has stored its bookkeeping on it: the patch
    that the apiserver used to refuse (and so the batch could never be deleted)."""
    diffbase = f"{meta.GROUP}/{bookkeeping.DIFFBASE_KEY}"

    def handled() -> dict[str, Any] | None:
        obj: dict[str, Any] = kube.get(
            resources.ImageBatch, name, namespace=f"tenant-{tenant}"
        ).to_dict()
        phase = (obj.get("status") or {}).get("phase")
        stored = diffbase in (obj["metadata"].get("annotations") or {})
        return obj if phase == "Queued" and stored else None

    return waiting.until(handled, timeout=120, what=f"batch {name} queued and handled")
