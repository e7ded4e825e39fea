"""The ImageBatch model: defaults, the round trip with the apiserver, and validation."""

import json
import pathlib
import typing
from typing import Any

import pydantic
import pytest
import yaml

from imagegen.api import imagebatch
from tests import builders

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

# An ImageBatch as the apiserver returns it while it runs: defaults filled in, status
# written by the operator.
FROM_APISERVER: dict[str, Any] = {
    "apiVersion": "imagegen.semantest.io/v1alpha1",
    "kind": "ImageBatch",
    "metadata": {
        "name": "lighthouse",
        "namespace": "tenant-metaphysical",
        "uid": "5d1e2f3a-0000-4000-8000-000000000001",
        "resourceVersion": "815",
        "generation": 1,
        "creationTimestamp": "2025-01-02T03:04:05Z",
        "ownerReferences": [],
    },
    "spec": {
        "tenant": "metaphysical",
        "priority": "high",
        "defaults": {"size": "1024x1024", "provider": "local", "format": "png"},
        "items": [
            {"id": "dawn", "prompt": "a lighthouse at dawn", "seed": 7},
            {
                "id": "storm",
                "prompt": "a lighthouse in a storm",
                "negativePrompt": "boats",
                "seed": 4_294_967_295,
                "size": "1536x1024",
                "provider": "local",
            },
        ],
        "webhook": {"url": "https://hooks.example.com/imagegen", "events": ["progress"]},
        "cancel": False,
    },
    "status": {
        "phase": "Running",
        "message": "dispatched to us-east",
        "counts": {"total": 2, "queued": 0, "running": 1, "succeeded": 1, "failed": 0},
        "progress": "1/2",
        "region": "us-east",
        "items": [
            {
                "id": "dawn",
                "state": "Succeeded",
                "provider": "local",
                "uri": "s3://images/5d1e2f3a/dawn.png",
                "attempts": 1,
                "finishedAt": "2025-01-02T03:04:30Z",
            },
            {"id": "storm", "state": "Running", "attempts": 2, "error": "lease expired"},
        ],
        "admittedAt": "2025-01-02T03:04:06Z",
        "startedAt": "2025-01-02T03:04:07Z",
        "deadline": "2025-01-02T03:09:06Z",
        "conditions": [
            {
                "type": "Admitted",
                "status": "True",
                "reason": "WithinQuota",
                "message": "",
                "lastTransitionTime": "2025-01-02T03:04:06Z",
                "observedGeneration": 1,
            }
        ],
        "observedGeneration": 1,
    },
}


def dump(
    obj: pydantic.BaseModel, *, exclude_none: bool = False, exclude_unset: bool = False
) -> dict[str, Any]:
    """The wire form of a model, as a dict."""
    return obj.model_dump(mode="json", exclude_none=exclude_none, exclude_unset=exclude_unset)


def rejected(batch: builders.BatchBuilder) -> dict[str, str]:
    """The field errors that validating the batch raises."""
    with pytest.raises(pydantic.ValidationError) as caught:
        batch.model()
    return builders.field_errors(caught.value)


# Defaults


def test_minimal_batch_gets_normal_priority_and_default_image_settings() -> None:
    spec = builders.make_batch().model().spec
    assert spec.priority == "normal"
    assert (spec.defaults.size, spec.defaults.provider, spec.defaults.format) == (
        "1024x1024",
        "local",
        "png",
    )
    assert spec.cancel is False
    assert spec.webhook is None


def test_item_without_size_or_provider_leaves_them_to_the_defaults() -> None:
    item = builders.make_batch().model().spec.items[0]
    assert (item.size, item.provider, item.seed, item.negative_prompt) == (None, None, None, None)


def test_webhook_without_events_gets_the_events_that_end_a_batch() -> None:
    webhook = builders.make_batch().webhook("https://hooks.example.com/x").model().spec.webhook
    assert webhook is not None
    assert webhook.events == list(imagebatch.TERMINAL_EVENTS)


# Round trip


def test_object_from_the_apiserver_round_trips_unchanged() -> None:
    obj = imagebatch.ImageBatch.model_validate(FROM_APISERVER)
    assert dump(obj, exclude_none=True) == FROM_APISERVER


def test_example_batch_round_trips() -> None:
    document = yaml.safe_load((EXAMPLES / "imagebatch-lighthouse.yaml").read_text())
    obj = imagebatch.ImageBatch.model_validate(document)
    assert dump(obj, exclude_unset=True) == document


def test_example_batch_belongs_to_the_premium_tenant_in_its_namespace() -> None:
    document = yaml.safe_load((EXAMPLES / "imagebatch-lighthouse.yaml").read_text())
    obj = imagebatch.ImageBatch.model_validate(document)
    assert obj.metadata.namespace == "tenant-metaphysical"
    assert obj.spec.tenant == "metaphysical"
    assert [item.seed is not None for item in obj.spec.items] == [True, True, True]


def test_example_namespaces_are_labelled_with_their_tenant() -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "namespaces.yaml").read_text()))
    labels = {doc["metadata"]["name"]: doc["metadata"]["labels"] for doc in documents}
    assert labels == {
        "tenant-metaphysical": {"imagegen.semantest.io/tenant": "metaphysical"},
        "tenant-acme": {"imagegen.semantest.io/tenant": "acme"},
    }


def test_builder_batch_dumps_to_what_it_was_built_from() -> None:
    batch = builders.make_batch("b", tenant="acme").items(3, seed=1).cancel()
    assert dump(batch.model(), exclude_unset=True) == batch.obj()


# Items


def test_batch_of_100_items_is_accepted() -> None:
    assert len(builders.make_batch().items(100).model().spec.items) == 100


def test_batch_of_101_items_is_rejected_at_items() -> None:
    assert list(rejected(builders.make_batch().items(101))) == ["spec.items"]


def test_batch_without_items_is_rejected_at_items() -> None:
    assert list(rejected(builders.make_batch().items(0))) == ["spec.items"]


def test_repeated_item_id_is_rejected_naming_it() -> None:
    assert rejected(builders.make_batch().items(2).item("i1")) == {
        "spec.items": "Value error, item ids must be unique, repeated: i1"
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"negative_prompt": "x" * 2001}, "negativePrompt"),
        ({"seed": -1}, "seed"),
        ({"seed": 4_294_967_296}, "seed"),
        ({"size": "huge"}, "size"),
        ({"size": "1024*1024"}, "size"),
        ({"size": "0x1024"}, "size"),
        ({"size": "10240x1024"}, "size"),
        ({"provider": "Local"}, "provider"),
    ],
)
def test_invalid_item_field_is_rejected_at_its_path(fields: dict[str, Any], field: str) -> None:
    errors = rejected(builders.make_batch().items(2).item("bad", **fields))
    assert list(errors) == [f"spec.items.2.{field}"]


@pytest.mark.parametrize("item_id", ["A1", "-a", "a-", "a b", "a" * 64, ""])
def test_invalid_item_id_is_rejected(item_id: str) -> None:
    assert list(rejected(builders.make_batch().items(0).item(item_id))) == ["spec.items.0.id"]


@pytest.mark.parametrize("item_id", ["a", "a1", "take_2", "x-y-z", "a" * 63])
def test_valid_item_id_is_accepted(item_id: str) -> None:
    builders.make_batch().items(0).item(item_id).model()


# Other spec fields


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.tenant", "Acme"),
        ("spec.priority", "urgent"),
        ("spec.defaults", {"size": "1024*1024"}),
        ("spec.defaults", {"format": "gif"}),
        ("spec.webhook", {"url": "ftp://hooks.example.com"}),
        ("spec.webhook", {"url": "https://hooks.example.com/" + "x" * 2048}),
        ("spec.webhook", {"url": "https://x", "events": ["finished"]}),
        ("spec.webhook", {"url": "https://x", "events": []}),
        ("spec.webhook", {"url": "https://x", "events": ["failed", "failed"]}),
        ("spec.cancel", "maybe"),
        ("spec.metadata", {}),
    ],
)
def test_invalid_field_is_rejected_at_its_path(path: str, value: Any) -> None:
    errors = rejected(builders.make_batch().set(path, value))
    assert errors
    assert all(where.startswith(path) for where in errors)


def test_missing_tenant_is_reported_as_missing() -> None:
    obj = builders.make_batch().obj()
    del obj["spec"]["tenant"]
    with pytest.raises(pydantic.ValidationError) as caught:
        imagebatch.ImageBatch.model_validate(obj)
    assert builders.field_errors(caught.value) == {"spec.tenant": "Field required"}


# Status


def test_status_phase_is_one_of_the_documented_phases() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        builders.make_batch().phase("Done").model()  # type: ignore[arg-type]
    assert list(builders.field_errors(caught.value)) == ["status.phase"]


def test_status_item_results_need_an_id_and_a_state() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        builders.make_batch().status(items=[{"uri": "s3://x"}]).model()
    assert set(builders.field_errors(caught.value)) == {"status.items.0.id", "status.items.0.state"}


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029", "\x00", "\x1e"])
def test_a_prompt_may_not_hold_a_control_character_or_unicode_line_separator(
    separator: str,
) -> None:
    # Clients that split watch streams as str.splitlines does would cut such a batch's
    # event in two, and break every watch of ImageBatches while it exists.
    with pytest.raises(pydantic.ValidationError, match=r"items\.1\.prompt"):
        builders.make_batch().item("img-0", prompt=f"a lighthouse{separator}at dawn").model()


def test_a_prompt_keeps_tabs_line_breaks_and_any_script() -> None:
    prompt = "a lighthouse\nat dawn,\tin oils — 灯台, phare"
    batch = builders.make_batch().item("img-0", prompt=prompt).model()
    assert batch.spec.items[-1].prompt == prompt


# The prompt budget of a batch (what `kubectl apply` can store)


def test_prompts_at_the_batch_budget_are_accepted() -> None:
    per_item = imagebatch.MAX_PROMPT_CHARACTERS // 100
    batch = builders.make_batch().items(100, prompt="p" * (per_item - 10), negative_prompt="n" * 10)
    assert imagebatch.prompt_characters(batch.model().spec.items) == 30_000


def test_one_prompt_character_over_the_batch_budget_is_refused_at_items() -> None:
    per_item = imagebatch.MAX_PROMPT_CHARACTERS // 100
    batch = builders.make_batch().items(99, prompt="p" * per_item).item("i99", prompt="p" * 301)
    assert rejected(batch) == {"spec.items": f"Value error, {imagebatch.PROMPTS_FIT.message}"}


def kubectl_copy_bytes(obj: dict[str, Any]) -> int:
    """Bytes of `kubectl apply`'s last-applied annotation for obj: Go's encoding/json
    writes UTF-8 as is and escapes <, > and & as \\u003c, \\u003e, \\u0026."""
    encoded = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for char in "<>&":
        encoded = encoded.replace(char, f"\\u{ord(char):04x}")
    return len(encoded.encode())


def test_the_largest_valid_spec_leaves_room_in_kubectl_apply_annotation() -> None:
    # Every bounded field at its bound, in the characters that cost kubectl most.
    per_item = imagebatch.MAX_PROMPT_CHARACTERS // 100
    worst = (
        builders.make_batch("b" * 253, tenant="t" * 63)
        .namespace("n" * 63)
        .items(0)
        .webhook("https://h/" + "&" * 2038, *typing.get_args(imagebatch.WebhookEvent))
        .obj()
    )
    worst["spec"]["defaults"] = {"size": "9999x9999", "provider": "p" * 63, "format": "jpeg"}
    worst["spec"]["items"] = [
        {"id": f"{n:03d}" + "x" * 60, "prompt": "<" * (per_item // 2),
         "negativePrompt": "&" * (per_item // 2), "seed": 4_294_967_295, "size": "9999x9999",
         "provider": "p" * 63}
        for n in range(imagebatch.MAX_ITEMS)
    ]  # fmt: skip
    imagebatch.ImageBatch.model_validate(worst)
    # 256 KiB for all annotations; the rest is the room left for the user's own.
    assert kubectl_copy_bytes(worst) < 256 * 1024 - 40_000
