"""The generated CRDs in a real kube-apiserver: examples are accepted, bad objects are
rejected by the apiserver itself with a message naming the field, and the status
subresource behaves as it does on any real cluster."""

from __future__ import annotations

import copy
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import lightkube
import pytest
import yaml
from lightkube import codecs
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.localcluster import install

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.usefixtures("crds_installed")


def example(name: str) -> dict[str, Any]:
    """A valid object from examples/, as a dict to change one field of."""
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return copy.deepcopy(document)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def namespace(kube: lightkube.Client) -> Iterator[str]:
    name = unique("batches")
    kube.create(core_v1.Namespace(metadata={"name": name}))  # type: ignore[arg-type]
    yield name
    kube.delete(core_v1.Namespace, name)


def tenant(**spec_changes: Any) -> dict[str, Any]:
    obj = example("tenant-metaphysical.yaml")
    obj["metadata"] = {"name": unique("tenant")}
    obj["spec"].update(spec_changes)
    return obj


def named(name: str) -> dict[str, Any]:
    obj = tenant()
    obj["metadata"]["name"] = name
    return obj


def workers(**changes: Any) -> dict[str, Any]:
    return {**example("tenant-metaphysical.yaml")["spec"]["workers"], **changes}


def batch(namespace: str, **spec_changes: Any) -> dict[str, Any]:
    obj = example("imagebatch-lighthouse.yaml")
    obj["metadata"] = {"name": unique("batch"), "namespace": namespace}
    obj["spec"].update(spec_changes)
    return obj


def items(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"id": f"i{n}", "prompt": f"a lighthouse, take {n}", **fields} for n in range(count)]


def rejection(kube: lightkube.Client, obj: dict[str, Any]) -> str:
    """Create obj; return the apiserver's message, failing if it was accepted."""
    with pytest.raises(lightkube.ApiError) as caught:
        kube.create(codecs.from_dict(obj))
    assert caught.value.status.code == 422, caught.value.status
    return str(caught.value.status.message)


def test_every_example_is_accepted(kube: lightkube.Client) -> None:
    applied = install.apply_files(client=kube, paths=EXAMPLES.glob("*.yaml"))
    kinds = {entry.split("/")[0] for entry in applied}
    assert {"Namespace", "Tenant", "ImageBatch"} <= kinds


def test_apiserver_fills_in_the_defaults_of_a_minimal_tenant(kube: lightkube.Client) -> None:
    name = unique("minimal")
    minimal = {
        "apiVersion": "imagegen.semantest.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"namespace": "tenant-minimal", "regions": ["us-east"]},
    }
    created = kube.create(codecs.from_dict(minimal))
    kube.delete(resources.Tenant, name)
    scaling = created["spec"]["workers"]
    assert created["spec"]["tier"] == "standard"
    assert (scaling["minReplicas"], scaling["maxReplicas"]) == (3, 50)
    assert scaling["targetCPUUtilizationPercentage"] == 70
    assert (scaling["scaleUpThresholdPercent"], scaling["scaleDownThresholdPercent"]) == (80, 30)


INVALID_TENANTS: dict[str, tuple[Callable[[], dict[str, Any]], list[str]]] = {
    "unknown tier": (lambda: tenant(tier="gold"), ["spec.tier", "Unsupported value"]),
    "name too long for its worker objects": (
        lambda: named("t" * 57),
        ["metadata.name must be at most 56 characters"],
    ),
    "name of the shared pool": (lambda: named("shared"), ["metadata.name must not be 'shared'"]),
    "minReplicas 0": (lambda: tenant(workers=workers(minReplicas=0)), ["spec.workers.minReplicas"]),
    "maxReplicas 51": (
        lambda: tenant(workers=workers(maxReplicas=51)),
        ["spec.workers.maxReplicas"],
    ),
    "minReplicas above maxReplicas": (
        lambda: tenant(workers=workers(minReplicas=10, maxReplicas=5)),
        ["spec.workers", "minReplicas must be <= maxReplicas"],
    ),
    "scale-up threshold below the target": (
        lambda: tenant(workers=workers(scaleUpThresholdPercent=60)),
        ["spec.workers", "scaleDownThresholdPercent < targetCPUUtilizationPercentage"],
    ),
    "scale-down threshold above the target": (
        lambda: tenant(workers=workers(scaleDownThresholdPercent=75)),
        ["spec.workers", "scaleDownThresholdPercent < targetCPUUtilizationPercentage"],
    ),
}


@pytest.mark.parametrize("case", INVALID_TENANTS, ids=list(INVALID_TENANTS))
def test_apiserver_rejects_invalid_tenant_naming_the_field(
    kube: lightkube.Client, case: str
) -> None:
    make, expected = INVALID_TENANTS[case]
    message = rejection(kube, make())
    for fragment in expected:
        assert fragment in message, message


INVALID_BATCHES: dict[str, tuple[Callable[[str], dict[str, Any]], list[str]]] = {
    "101 items": (lambda ns: batch(ns, items=items(101)), ["spec.items", "at most 100"]),
    "0 items": (lambda ns: batch(ns, items=[]), ["spec.items", "at least 1"]),
    "empty prompt": (lambda ns: batch(ns, items=items(1, prompt="")), ["spec.items[0].prompt"]),
    "bad item size": (lambda ns: batch(ns, items=items(1, size="huge")), ["spec.items[0].size"]),
    "bad default size": (
        lambda ns: batch(ns, defaults={"size": "1024*1024"}),
        ["spec.defaults.size"],
    ),
    "duplicate item ids": (
        lambda ns: batch(ns, items=[*items(2), *items(1)]),
        ["spec.items[2]", "Duplicate value"],
    ),
    "unknown priority": (lambda ns: batch(ns, priority="urgent"), ["spec.priority"]),
}


@pytest.mark.parametrize("case", INVALID_BATCHES, ids=list(INVALID_BATCHES))
def test_apiserver_rejects_invalid_batch_naming_the_field(
    kube: lightkube.Client, namespace: str, case: str
) -> None:
    make, expected = INVALID_BATCHES[case]
    message = rejection(kube, make(namespace))
    for fragment in expected:
        assert fragment in message, message


def test_items_of_an_existing_batch_cannot_change(kube: lightkube.Client, namespace: str) -> None:
    created = kube.create(codecs.from_dict(batch(namespace, items=items(2))))
    changed = items(2)
    changed[1]["prompt"] = "a different picture"
    with pytest.raises(lightkube.ApiError) as caught:
        kube.patch(
            resources.ImageBatch,
            created.metadata.name,
            {"spec": {"items": changed}},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )
    assert caught.value.status.code == 422
    assert "spec.items" in str(caught.value.status.message)
    assert "immutable" in str(caught.value.status.message)


def test_other_spec_fields_of_a_batch_can_change(kube: lightkube.Client, namespace: str) -> None:
    created = kube.create(codecs.from_dict(batch(namespace)))
    patched = kube.patch(
        resources.ImageBatch,
        created.metadata.name,
        {"spec": {"cancel": True}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    assert patched["spec"]["cancel"] is True


def test_spec_written_through_the_status_subresource_is_ignored(kube: lightkube.Client) -> None:
    created = kube.create(codecs.from_dict(tenant()))
    name = created.metadata.name
    kube.patch(
        resources.Tenant.Status,
        name,
        {"spec": {"tier": "standard"}, "status": {"observedGeneration": 1}},
        patch_type=PatchType.MERGE,
    )
    stored = kube.get(resources.Tenant, name)
    kube.delete(resources.Tenant, name)
    assert stored["spec"]["tier"] == "priority"
    assert stored["status"]["observedGeneration"] == 1


def test_status_written_through_the_main_resource_is_ignored(kube: lightkube.Client) -> None:
    obj = tenant()
    obj["status"] = {"observedGeneration": 42}
    created = kube.create(codecs.from_dict(obj))
    kube.delete(resources.Tenant, created.metadata.name)
    assert "status" not in created or created["status"] in (None, {})


def test_generation_bumps_on_spec_changes_only(kube: lightkube.Client) -> None:
    created = kube.create(codecs.from_dict(tenant()))
    name = created.metadata.name
    assert created.metadata.generation == 1

    def patch(resource: Any, body: dict[str, Any]) -> int:
        patched = kube.patch(resource, name, body, patch_type=PatchType.MERGE)
        generation: int = patched.metadata.generation
        return generation

    after_status = patch(resources.Tenant.Status, {"status": {"observedGeneration": 1}})
    after_label = patch(resources.Tenant, {"metadata": {"labels": {"team": "platform"}}})
    after_spec = patch(resources.Tenant, {"spec": {"tier": "standard"}})
    kube.delete(resources.Tenant, name)
    assert (after_status, after_label, after_spec) == (1, 1, 2)
