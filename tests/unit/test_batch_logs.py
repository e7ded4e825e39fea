"""A batch's correlation id: the gateway's annotation when set, else the batch uid."""

from imagegen import logs
from imagegen.api import meta
from imagegen.controller import batchlogs

BODY = {
    "metadata": {"name": "nightly", "namespace": "tenant-acme", "uid": "uid-1"},
    "spec": {"tenant": "acme"},
    "status": {"region": "us-east"},
}


def test_the_annotation_is_the_correlation_id() -> None:
    annotated = {**BODY, "metadata": {**BODY["metadata"], "annotations": {
        meta.CORRELATION_ANNOTATION: "req-7f3a"}}}  # fmt: skip
    assert batchlogs.correlation_id(annotated) == "req-7f3a"


def test_without_the_annotation_the_uid_is() -> None:
    assert batchlogs.correlation_id(BODY) == "uid-1"


def test_the_batchs_fields_are_bound_while_handling_it() -> None:
    with batchlogs.bound(BODY):
        assert logs.current() == {
            "tenant": "acme", "batch": "uid-1", "region": "us-east", "correlation_id": "uid-1",
        }  # fmt: skip
    assert logs.current() == {}
