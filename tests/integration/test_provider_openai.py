"""The OpenAI-compatible provider against a local fake server that speaks the protocol:
a real HTTP server on a loopback port, real timeouts, bounded retries."""

import dataclasses
import io
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from imagegen.worker.providers import base, openai
from tests.integration import fakeopenai

REQUEST = base.GenerationRequest(prompt="a lighthouse at dawn", seed=7, width=64, height=48)
READ_TIMEOUT = 0.2


@pytest.fixture
async def server() -> AsyncIterator[fakeopenai.FakeImagesServer]:
    async with fakeopenai.serve() as fake:
        yield fake


@pytest.fixture
def waits() -> list[float]:
    return []


def settings(base_url: str, **changes: Any) -> openai.OpenAISettings:
    fast = openai.OpenAISettings(
        base_url=base_url,
        model="test-model",
        timeouts=openai.Timeouts(read_seconds=READ_TIMEOUT, attempt_seconds=5),
        retry=openai.Retry(
            max_attempts=3,
            backoff_initial_seconds=0.01,
            backoff_max_seconds=0.05,
            jitter_seconds=0.01,
            retry_after_cap_seconds=10,
        ),
    )
    return dataclasses.replace(fast, **changes)


@pytest.fixture
async def provider(
    server: fakeopenai.FakeImagesServer, waits: list[float]
) -> AsyncIterator[openai.OpenAIProvider]:
    async def record(seconds: float) -> None:
        waits.append(seconds)

    made = openai.OpenAIProvider(
        settings=settings(server.base_url), api_key=fakeopenai.KEY, sleep=record
    )
    yield made
    await made.aclose()


@pytest.fixture(autouse=True)
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_key_nowhere(*texts: str) -> None:
    for text in texts:
        assert fakeopenai.KEY not in text


async def test_an_image_is_generated_with_the_protocols_request(
    provider: openai.OpenAIProvider,
    server: fakeopenai.FakeImagesServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    image = await provider.generate(request=REQUEST)
    assert server.bodies == [
        {
            "model": "test-model",
            "prompt": "a lighthouse at dawn",
            "n": 1,
            "size": "64x48",
            "response_format": "b64_json",
        }
    ]
    assert (image.provider, image.content_type, image.width, image.height) == (
        "openai",
        "image/png",
        64,
        48,
    )
    assert image.data == fakeopenai.png(64, 48)
    assert_key_nowhere(logs.text)


async def test_the_seed_is_sent_only_when_configured(server: fakeopenai.FakeImagesServer) -> None:
    seeded = openai.OpenAIProvider(
        settings=settings(server.base_url, send_seed=True), api_key=fakeopenai.KEY
    )
    try:
        await seeded.generate(request=REQUEST)
    finally:
        await seeded.aclose()
    assert server.bodies[0]["seed"] == 7


async def test_an_image_in_another_format_is_converted_to_the_one_asked(
    provider: openai.OpenAIProvider,
) -> None:
    image = await provider.generate(request=dataclasses.replace(REQUEST, format="webp"))
    assert image.content_type == "image/webp"
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert (decoded.format, decoded.size) == ("WEBP", (64, 48))


async def test_a_server_error_is_retried_with_backoff_then_succeeds(
    provider: openai.OpenAIProvider,
    server: fakeopenai.FakeImagesServer,
    waits: list[float],
    logs: pytest.LogCaptureFixture,
) -> None:
    server.plan = [fakeopenai.Fail(status=500)]
    image = await provider.generate(request=REQUEST)
    assert image.width == 64
    assert len(server.bodies) == 2
    assert len(waits) == 1
    assert 0.01 <= waits[0] <= 0.05
    assert "attempt 1 of 3 failed (HTTP 500: server trouble)" in logs.text
    assert_key_nowhere(logs.text)


async def test_retries_are_bounded_and_the_last_error_is_retryable(
    provider: openai.OpenAIProvider, server: fakeopenai.FakeImagesServer, waits: list[float]
) -> None:
    server.plan = [
        fakeopenai.Fail(status=503),
        fakeopenai.Fail(status=502),
        fakeopenai.Fail(status=500, message="still down"),
    ]
    with pytest.raises(base.ProviderError) as error:
        await provider.generate(request=REQUEST)
    assert error.value.retryable
    assert error.value.message == "openai: gave up after 3 attempts: HTTP 500: still down"
    assert len(server.bodies) == 3
    assert len(waits) == 2


async def test_a_bad_request_is_final_and_carries_the_servers_message(
    provider: openai.OpenAIProvider,
    server: fakeopenai.FakeImagesServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    server.plan = [fakeopenai.Fail(status=400, message="size must be one of 1024x1024, 1792x1024")]
    with pytest.raises(base.ProviderError) as error:
        await provider.generate(request=REQUEST)
    assert not error.value.retryable
    assert error.value.message == "openai: HTTP 400: size must be one of 1024x1024, 1792x1024"
    assert len(server.bodies) == 1
    assert_key_nowhere(str(error.value), logs.text)


async def test_an_answer_slower_than_the_read_timeout_is_a_retryable_timeout(
    provider: openai.OpenAIProvider, server: fakeopenai.FakeImagesServer, waits: list[float]
) -> None:
    server.plan = [fakeopenai.Slow(), fakeopenai.Slow(), fakeopenai.Slow()]
    with pytest.raises(base.ProviderError, match=r"timed out \(ReadTimeout\)") as error:
        await provider.generate(request=REQUEST)
    assert error.value.retryable
    assert len(waits) == 2


async def test_a_whole_attempt_is_bounded_even_when_no_single_read_times_out(
    server: fakeopenai.FakeImagesServer,
) -> None:
    server.plan = [fakeopenai.Slow()]
    bounded = openai.OpenAIProvider(
        settings=settings(
            server.base_url,
            timeouts=openai.Timeouts(read_seconds=30, attempt_seconds=READ_TIMEOUT),
            retry=openai.Retry(max_attempts=1),
        ),
        api_key=fakeopenai.KEY,
    )
    try:
        with pytest.raises(base.ProviderError, match=r"after 1 attempt: timed out \(TimeoutError"):
            await bounded.generate(request=REQUEST)
    finally:
        await bounded.aclose()


async def test_a_timeout_followed_by_an_answer_succeeds(
    provider: openai.OpenAIProvider, server: fakeopenai.FakeImagesServer
) -> None:
    server.plan = [fakeopenai.Slow()]
    image = await provider.generate(request=REQUEST)
    assert image.height == 48


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [("2", 2.0), ("3600", 10.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
    ids=["seconds", "capped", "date-passed"],
)
async def test_too_many_requests_waits_what_retry_after_asks_up_to_the_cap(
    provider: openai.OpenAIProvider,
    server: fakeopenai.FakeImagesServer,
    waits: list[float],
    retry_after: str,
    waited: float,
) -> None:
    server.plan = [fakeopenai.Fail(status=429, message="rate limited", retry_after=retry_after)]
    await provider.generate(request=REQUEST)
    assert waits == [waited]


async def test_a_refused_key_is_never_repeated_in_errors_or_logs(
    server: fakeopenai.FakeImagesServer, logs: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-key-also-secret"
    refused = openai.OpenAIProvider(settings=settings(server.base_url), api_key=wrong)
    try:
        with pytest.raises(base.ProviderError) as error:
            await refused.generate(request=REQUEST)
    finally:
        await refused.aclose()
    assert not error.value.retryable
    assert error.value.message == "openai: HTTP 401: Incorrect API key provided: [redacted]"
    assert wrong not in logs.text


async def test_a_success_without_an_image_is_final(
    provider: openai.OpenAIProvider, server: fakeopenai.FakeImagesServer
) -> None:
    server.plan = [fakeopenai.Garbage()]
    with pytest.raises(base.ProviderError, match=r"holds no image") as error:
        await provider.generate(request=REQUEST)
    assert not error.value.retryable


async def test_an_unreachable_endpoint_is_retried_then_retryable(waits: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def record(seconds: float) -> None:
        waits.append(seconds)

    unreachable = openai.OpenAIProvider(
        settings=settings(f"http://127.0.0.1:{port}/v1"), api_key=fakeopenai.KEY, sleep=record
    )
    try:
        with pytest.raises(base.ProviderError, match=r"transport error \(ConnectError") as error:
            await unreachable.generate(request=REQUEST)
    finally:
        await unreachable.aclose()
    assert error.value.retryable
    assert len(waits) == 2
