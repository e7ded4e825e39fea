"""Drift detection: a live object matches when it holds every desired field."""

from imagegen.controller import drift

DESIRED = {
    "metadata": {"name": "worker-acme", "labels": {"tenant": "acme"}},
    "spec": {"template": {"spec": {"containers": [{"name": "worker", "image": "img:1"}]}}},
}


def live(**overrides: object) -> dict[str, object]:
    container = {"name": "worker", "image": "img:1", "terminationMessagePath": "/dev/x"}
    container.update(overrides)
    return {
        "metadata": {"name": "worker-acme", "labels": {"tenant": "acme"}, "uid": "u1"},
        "spec": {"replicas": 4, "template": {"spec": {"containers": [container]}}},
        "status": {"readyReplicas": 3},
    }


def test_fields_the_apiserver_added_are_not_drift() -> None:
    assert drift.contains(live=live(), desired=DESIRED)


def test_a_changed_desired_field_is_drift() -> None:
    assert not drift.contains(live=live(image="img:2"), desired=DESIRED)


def test_a_missing_desired_field_is_drift() -> None:
    assert not drift.contains(live={"metadata": DESIRED["metadata"]}, desired=DESIRED)


def test_an_extra_list_item_is_drift() -> None:
    obj = live()
    obj["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})  # type: ignore[index]
    assert not drift.contains(live=obj, desired=DESIRED)


def test_a_string_is_not_compared_as_a_list_of_characters() -> None:
    assert not drift.contains(live={"a": "abc"}, desired={"a": ["a", "b", "c"]})
    assert not drift.contains(live={"a": ["a", "b", "c"]}, desired={"a": "abc"})
