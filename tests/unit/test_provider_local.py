"""The local provider: real, repeatable images with the prompt drawn on them."""

import asyncio
import dataclasses
import io
import threading
import time
from typing import Any

import pytest
from PIL import Image

from imagegen.api import imagebatch
from imagegen.worker.providers import base, local

PROMPT = "a lighthouse at dawn"


BASE = base.GenerationRequest(prompt=PROMPT, seed=7, width=96, height=64)


def request(**changes: Any) -> base.GenerationRequest:
    return dataclasses.replace(BASE, **changes)


async def generate(req: base.GenerationRequest) -> base.GeneratedImage:
    return await local.LocalProvider().generate(request=req)


async def test_the_same_request_always_gives_the_same_bytes() -> None:
    first = await generate(request())
    second = await generate(request())
    assert first.data == second.data
    assert local.render(request=request()) == first.data


async def test_the_image_is_a_png_of_the_requested_size() -> None:
    image = await generate(request(width=120, height=80))
    assert image.content_type == "image/png"
    assert (image.provider, image.width, image.height) == ("local", 120, 80)
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.format == "PNG"
        assert decoded.size == (120, 80)


@pytest.mark.parametrize(
    "changes",
    [{"seed": 8}, {"prompt": "a lighthouse at dusk"}, {"negative_prompt": "fog"}],
    ids=["seed", "prompt", "negative-prompt"],
)
async def test_a_different_seed_or_prompt_gives_a_different_image(
    changes: dict[str, Any],
) -> None:
    assert (await generate(request(**changes))).data != (await generate(request())).data


async def test_an_unseeded_request_is_repeatable_and_equals_seed_zero() -> None:
    assert (await generate(request(seed=None))).data == (await generate(request(seed=0))).data


@pytest.mark.parametrize(
    ("format", "pillow_format", "content_type"),
    [("jpeg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")],
)
async def test_jpeg_and_webp_are_encoded_as_asked(
    format: imagebatch.Format, pillow_format: str, content_type: str
) -> None:
    image = await generate(request(format=format))
    assert image.content_type == content_type
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.format == pillow_format
        assert decoded.size == (96, 64)
    assert (await generate(request(format=format))).data == image.data


async def white_pixels_across_the_middle(*, prompt: str) -> int:
    image = await generate(request(prompt=prompt, width=320, height=240))
    with Image.open(io.BytesIO(image.data)) as decoded:
        band = decoded.convert("L").crop((0, 80, 320, 160))
        return sum(band.histogram()[250:])


async def test_the_prompt_is_drawn_in_white_across_the_middle_of_the_image() -> None:
    assert await white_pixels_across_the_middle(prompt="lighthouse " * 6) > 200
    assert await white_pixels_across_the_middle(prompt="") == 0


async def test_a_prompt_too_long_for_a_small_image_still_renders() -> None:
    image = await generate(request(prompt="x" * 2000, width=10, height=10))
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.size == (10, 10)


async def test_rendering_runs_in_a_thread_not_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real_render = local.render

    def recording_render(*, request: base.GenerationRequest) -> bytes:
        threads.append(threading.get_ident())
        return real_render(request=request)

    monkeypatch.setattr(local, "render", recording_render)
    await asyncio.gather(generate(request()), generate(request(seed=8)))
    assert len(threads) == 2
    assert threading.get_ident() not in threads


async def test_the_simulated_cost_is_spent_in_the_rendering_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[tuple[float, int]] = []
    monkeypatch.setattr(
        time, "sleep", lambda seconds: sleeps.append((seconds, threading.get_ident()))
    )
    provider = local.LocalProvider(settings=local.LocalSettings(simulated_cost_seconds=0.2))
    await provider.generate(request=request())
    assert [seconds for seconds, _ in sleeps] == [0.2]
    assert sleeps[0][1] != threading.get_ident()


async def test_a_request_above_the_pixel_limit_fails_and_is_not_retryable() -> None:
    provider = local.LocalProvider(settings=local.LocalSettings(max_pixels=100 * 100))
    with pytest.raises(base.ProviderError, match=r"101x100 exceeds") as error:
        await provider.generate(request=request(width=101, height=100))
    assert not error.value.retryable


def test_a_request_of_no_pixels_is_refused() -> None:
    with pytest.raises(ValueError, match=r"size: must be positive"):
        request(width=0)
