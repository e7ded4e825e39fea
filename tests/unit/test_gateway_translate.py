"""Submissions become ImageBatch CRs the CRD accepts; CRs become the API's batch object."""

from typing import Any

import pydantic
import pytest

from imagegen.api import meta
from imagegen.gateway import problems, schemas, translate
from tests import builders


def request(**fields: Any) -> schemas.BatchRequest:
    return schemas.BatchRequest.model_validate(
        {"items": [{"prompt": "a lighthouse"}, {"id": "mine", "prompt": "a boat"}], **fields}
    )


def test_a_submission_becomes_a_cr_in_the_tenants_namespace_with_generated_item_ids() -> None:
    obj = translate.custom_resource(
        request(defaults={"size": "512x512"}, metadata={"order": "7"}),
        name="batch-1", tenant="acme", namespace="tenant-acme",
    )  # fmt: skip
    assert obj["metadata"]["namespace"] == "tenant-acme"
    assert obj["metadata"]["annotations"] == {translate.METADATA_ANNOTATION: '{"order": "7"}'}
    assert obj["spec"]["tenant"] == "acme"
    assert [item["id"] for item in obj["spec"]["items"]] == ["item-0", "mine"]
    assert obj["spec"]["defaults"] == {"size": "512x512", "provider": "local", "format": "png"}
    assert "webhook" not in obj["spec"]


def test_the_request_id_becomes_the_correlation_id_the_operator_logs_the_batch_under() -> None:
    obj = translate.custom_resource(
        request(), name="b", tenant="acme", namespace="tenant-acme", correlation_id="req-7f3a"
    )
    assert obj["metadata"]["annotations"] == {meta.CORRELATION_ANNOTATION: "req-7f3a"}


def test_a_webhook_without_events_gets_the_crds_default_events() -> None:
    obj = translate.custom_resource(
        request(webhook={"url": "https://example.com/hook"}),
        name="b", tenant="acme", namespace="tenant-acme",
    )  # fmt: skip
    assert obj["spec"]["webhook"]["events"] == [
        "succeeded", "partiallySucceeded", "failed", "cancelled", "rejected",
    ]  # fmt: skip


def test_a_generated_id_that_collides_with_a_given_one_is_refused_naming_items() -> None:
    clash = schemas.BatchRequest.model_validate(
        {"items": [{"prompt": "a"}, {"id": "item-0", "prompt": "b"}]}
    )
    with pytest.raises(pydantic.ValidationError) as caught:
        translate.custom_resource(clash, name="b", tenant="acme", namespace="tenant-acme")
    problem = problems.from_validation(caught.value)
    assert [error.field for error in problem.errors] == ["items"]


def test_a_cr_without_status_is_pending_with_its_item_count() -> None:
    obj = builders.make_batch("b1").items(3).obj()
    shown = translate.batch_object(obj)
    assert shown.status == "Pending"
    assert shown.request_counts.total == 3
    assert shown.links["self"] == "/api/v1/batches/b1"
    assert shown.items == []


def test_a_running_cr_shows_its_counts_and_links_to_finished_images() -> None:
    obj = (
        builders.make_batch("b2").items(2)
        .status(
            phase="Running", progress="1/2", region="us-east",
            counts={"total": 2, "queued": 0, "running": 1, "succeeded": 1, "failed": 0},
            items=[{"id": "i0", "state": "Succeeded", "uri": "file:///x/i0.png"},
                   {"id": "i1", "state": "Running"}],
        )
        .obj()
    )  # fmt: skip
    shown = translate.batch_object(obj)
    assert shown.status == "Running"
    assert shown.request_counts.running == 1
    assert [(item.id, item.image) for item in shown.items] == [
        ("i0", "/api/v1/batches/b2/images/i0"),
        ("i1", None),
    ]
    assert not translate.is_terminal(obj)


def test_metadata_edited_by_hand_into_deeply_nested_json_is_shown_as_none() -> None:
    nested = "[" * 100_000 + "]" * 100_000
    obj = builders.make_batch("b1").annotation(translate.METADATA_ANNOTATION, nested).obj()
    assert translate.batch_object(obj).metadata == {}
