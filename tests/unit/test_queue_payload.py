"""The payload of a queued item: one shape for the operator and the worker, checked."""

import json
from typing import Any

import pytest

from imagegen.api import imagebatch
from imagegen.queue import payload

WORK = payload.WorkItem(
    prompt="a lighthouse at dawn",
    negative_prompt="fog",
    width=640,
    height=480,
    seed=7,
    format="webp",
    provider="local",
    providers=("openai", "local"),
)


def test_a_work_item_survives_the_trip_through_json() -> None:
    document = json.loads(json.dumps(WORK.to_json()))

    assert payload.WorkItem.from_json(document) == WORK


def test_keys_are_camel_case_and_unset_optional_fields_are_left_out() -> None:
    assert WORK.to_json() == {
        "prompt": "a lighthouse at dawn",
        "negativePrompt": "fog",
        "width": 640,
        "height": 480,
        "seed": 7,
        "format": "webp",
        "provider": "local",
        "providers": ["openai", "local"],
    }
    bare = payload.WorkItem(prompt="p", width=8, height=8, providers=("local",))
    assert bare.to_json() == {
        "prompt": "p",
        "width": 8,
        "height": 8,
        "format": "png",
        "providers": ["local"],
    }


def test_nulls_and_a_missing_format_read_as_unset() -> None:
    document = {"prompt": "p", "width": 8, "height": 8, "providers": ["local"]}
    document |= {"seed": None, "negativePrompt": None, "provider": None}

    work = payload.WorkItem.from_json(document)

    assert (work.seed, work.negative_prompt, work.provider, work.format) == (
        None,
        None,
        None,
        "png",
    )


def test_unknown_keys_are_ignored_so_a_newer_operator_does_not_fail_items() -> None:
    document = WORK.to_json() | {"style": "watercolour"}

    assert payload.WorkItem.from_json(document) == WORK


def changed(**changes: Any) -> dict[str, Any]:
    document = WORK.to_json()
    for key, value in changes.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (changed(prompt=...), r"payload\.prompt: must be a string, got nothing"),
        (changed(prompt=""), r"payload\.prompt: must not be empty"),
        (changed(width="640"), r"payload\.width: must be an integer, got str"),
        (changed(height=True), r"payload\.height: must be an integer, got bool"),
        (changed(width=0), r"payload\.width: must be between 1 and 9999, got 0"),
        (changed(height=10_000), r"payload\.height: must be between 1 and 9999"),
        (changed(seed=-1), r"payload\.seed: must be between 0 and 4294967295"),
        (changed(seed=1.5), r"payload\.seed: must be an integer, got float"),
        (changed(format="gif"), r"payload\.format: must be one of png, jpeg, webp, got 'gif'"),
        (changed(negativePrompt=3), r"payload\.negativePrompt: must be a string, got int"),
        (changed(providers=...), r"payload\.providers: must be a list of provider names"),
        (changed(providers="local"), r"payload\.providers: must be a list of provider names"),
        (changed(providers=[]), r"payload\.providers: must list at least one provider"),
        (changed(providers=["local", ""]), r"payload\.providers: .*none of them empty"),
        (changed(providers=["local", "local"]), r"payload\.providers: names must be unique"),
        (changed(provider="dalle"), r"payload\.provider: 'dalle' is not one of the providers"),
    ],
)
def test_a_malformed_payload_is_refused_naming_the_field(
    document: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        payload.WorkItem.from_json(document)


@pytest.mark.parametrize("document", [None, [], "prompt", 3])
def test_a_payload_that_is_not_an_object_is_refused(document: object) -> None:
    with pytest.raises(ValueError, match=r"payload: must be a JSON object"):
        payload.WorkItem.from_json(document)


def test_an_item_takes_the_batch_defaults_it_does_not_set() -> None:
    defaults = imagebatch.Defaults(size="512x256", provider="openai", format="jpeg")
    item = imagebatch.Item(id="a1", prompt="a lighthouse", seed=3)

    work = payload.WorkItem.for_item(item=item, defaults=defaults, providers=["openai", "local"])

    assert work == payload.WorkItem(
        prompt="a lighthouse",
        width=512,
        height=256,
        seed=3,
        format="jpeg",
        provider="openai",
        providers=("openai", "local"),
    )


def test_an_items_own_size_and_provider_win_over_the_defaults() -> None:
    item = imagebatch.Item(
        id="a1", prompt="p", negativePrompt="fog", size="64x48", provider="local"
    )

    work = payload.WorkItem.for_item(
        item=item, defaults=imagebatch.Defaults(provider="openai"), providers=["openai", "local"]
    )

    assert (work.width, work.height, work.provider, work.negative_prompt) == (
        64,
        48,
        "local",
        "fog",
    )


def test_an_item_asking_for_a_provider_the_tenant_lacks_is_refused() -> None:
    item = imagebatch.Item(id="a1", prompt="p")

    with pytest.raises(ValueError, match=r"payload\.provider: 'local' is not one of"):
        payload.WorkItem.for_item(item=item, defaults=imagebatch.Defaults(), providers=["openai"])


def test_the_correlation_id_rides_along_and_may_be_absent() -> None:
    work = payload.WorkItem(
        prompt="p", width=8, height=8, providers=("local",), correlation_id="r-1"
    )
    assert work.to_json()["correlationId"] == "r-1"
    assert payload.WorkItem.from_json(work.to_json()) == work
    plain = payload.WorkItem(prompt="p", width=8, height=8, providers=("local",))
    assert "correlationId" not in plain.to_json()
    with pytest.raises(ValueError, match=r"payload\.correlationId"):
        payload.WorkItem.from_json({**plain.to_json(), "correlationId": 7})
