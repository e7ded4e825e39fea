"""Log lines: JSON with the bound tenant, batch, region and correlation id; text with the
same fields appended; fields stay with the task that bound them."""

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from imagegen import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure(format="json", verbose=False)
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_carries_the_bound_fields(captured: io.StringIO) -> None:
    with logs.bound(tenant="acme", batch="uid-1", region="us-east", correlation_id="req-7"):
        logging.getLogger("imagegen.test").info("dispatched %d item(s)", 3)
    (line,) = lines(captured)
    assert line["msg"] == "dispatched 3 item(s)"
    assert (line["tenant"], line["batch"], line["region"], line["correlation_id"]) == (
        "acme", "uid-1", "us-east", "req-7",
    )  # fmt: skip
    assert line["level"] == "INFO"
    assert line["logger"] == "imagegen.test"
    assert line["time"].endswith("+00:00")


def test_fields_leave_with_the_block_and_none_values_are_skipped(captured: io.StringIO) -> None:
    with logs.bound(tenant="acme", region=None):
        logging.getLogger("t").warning("inside")
    logging.getLogger("t").warning("outside")
    inside, outside = lines(captured)
    assert inside["tenant"] == "acme"
    assert "region" not in inside
    assert "tenant" not in outside


async def test_tasks_keep_their_own_fields(captured: io.StringIO) -> None:
    async def work(tenant: str) -> None:
        with logs.bound(tenant=tenant):
            await asyncio.sleep(0)
            logging.getLogger("t").warning("working")

    await asyncio.gather(work("acme"), work("globex"))
    assert sorted(line["tenant"] for line in lines(captured)) == ["acme", "globex"]


def test_a_traceback_goes_into_exc(captured: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("t").exception("failed")
    (line,) = lines(captured)
    assert "RuntimeError: boom" in line["exc"]


def test_an_unknown_field_names_itself() -> None:
    with pytest.raises(ValueError, match="api_key"), logs.bound(api_key="x"):
        pass


def test_an_unknown_format_names_the_option() -> None:
    with pytest.raises(ValueError, match="--log-format"):
        logs.configure(format="xml", verbose=False)  # type: ignore[arg-type]


def test_a_text_line_ends_with_the_bound_fields() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure(format="text", verbose=False)
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        with logs.bound(tenant="acme", correlation_id="req-7"):
            logging.getLogger("t").info("dispatched")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert stream.getvalue().rstrip().endswith("t: dispatched tenant=acme correlation_id=req-7")


def test_fields_bound_for_the_rest_of_a_task_leave_with_the_enclosing_block(
    captured: io.StringIO,
) -> None:
    with logs.bound(correlation_id="req-9"):
        logs.bind_rest_of_task(tenant="acme")
        logging.getLogger("t").warning("authenticated")
    logging.getLogger("t").warning("next request")
    inside, outside = lines(captured)
    assert (inside["tenant"], inside["correlation_id"]) == ("acme", "req-9")
    assert "tenant" not in outside
    assert "correlation_id" not in outside


def test_binding_an_unknown_field_for_the_rest_of_a_task_names_it() -> None:
    with pytest.raises(ValueError, match="api_key"):
        logs.bind_rest_of_task(api_key="igk_x")
