"""The embedded default provider: draws a real image from the prompt and seed, no model.

The picture is a seeded gradient with seeded shapes, and the prompt itself written on it,
so a person looking at a result can tell which item it belongs to. The same request
always gives the same bytes (with the same Pillow release): the random choices come from
a hash of prompt, negative prompt and seed, never from global state or the clock. The
size only scales the picture, so one prompt and seed look alike at every size.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
import time

from PIL import Image, ImageDraw, ImageFont

from imagegen.worker.providers import base, codec

NAME = "local"

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Colour = tuple[int, int, int]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LocalSettings:
    """How the local provider renders."""

    simulated_cost_seconds: float = 0.0
    """A benchmark aid, not a feature: each image also sleeps this long in its rendering
    thread, standing in for a real model's time per image so that load tests and the
    autoscaling demo see realistic throughput. 0 (the default) in normal use."""
    max_pixels: int = 4096 * 4096
    """Largest image rendered, width times height. The API allows up to 9999x9999, which
    would hold about 300 MB per image in a worker; larger requests fail, not retryable."""


class LocalProvider:
    """Renders images in a thread with Pillow, so the event loop stays free."""

    def __init__(self, *, settings: LocalSettings | None = None) -> None:
        self.name = NAME
        self._settings = settings or LocalSettings()

    async def generate(self, *, request: base.GenerationRequest) -> base.GeneratedImage:
        """Render one image; a request too large for `max_pixels` fails, not retryable."""
        if request.width * request.height > self._settings.max_pixels:
            raise base.ProviderError(
                f"{NAME}: size {request.size} exceeds the limit of "
                f"{self._settings.max_pixels} pixels",
                retryable=False,
            )
        try:
            data = await asyncio.to_thread(self._work, request)
        except (OSError, ValueError) as error:
            raise base.ProviderError(f"{NAME}: cannot render: {error}", retryable=False) from error
        return base.GeneratedImage(
            data=data,
            content_type=base.CONTENT_TYPES[request.format],
            provider=NAME,
            width=request.width,
            height=request.height,
        )

    async def aclose(self) -> None:
        """Nothing to release: the provider holds no connections."""

    def _work(self, request: base.GenerationRequest) -> bytes:
        # Runs in a worker thread: the simulated cost blocks that thread, never the loop.
        if self._settings.simulated_cost_seconds > 0:
            time.sleep(self._settings.simulated_cost_seconds)
        return render(request=request)


def render(*, request: base.GenerationRequest) -> bytes:
    """The encoded image for a request; synchronous and CPU-bound, so call it in a thread."""
    # A seeded generator on purpose: the picture must be repeatable, not unpredictable.
    rng = random.Random(_seed_of(request))  # noqa: S311
    image = _background(rng=rng, width=request.width, height=request.height)
    image = _shapes(image=image, rng=rng)
    _caption(image=image, prompt=request.prompt, seed=request.seed or 0)
    return codec.encode(image=image, format=request.format)


def _seed_of(request: base.GenerationRequest) -> int:
    # A cryptographic hash rather than hash(): str hashes change per process
    # (PYTHONHASHSEED), and the picture must not.
    material = json.dumps([request.prompt, request.negative_prompt, request.seed or 0])
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")


def _colour(rng: random.Random) -> Colour:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _background(*, rng: random.Random, width: int, height: int) -> Image.Image:
    start, end = _colour(rng), _colour(rng)
    mask = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270)))
    mask = mask.resize((width, height), Image.Resampling.BILINEAR)
    return Image.composite(
        Image.new("RGB", (width, height), end), Image.new("RGB", (width, height), start), mask
    )


def _shapes(*, image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(rng.randint(4, 9)):
        # Coordinates are fractions of the size, so the picture scales with it.
        x0, x1 = sorted((rng.random() * width, rng.random() * width))
        y0, y1 = sorted((rng.random() * height, rng.random() * height))
        fill = (*_colour(rng), rng.randint(70, 160))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def _caption(*, image: Image.Image, prompt: str, seed: int) -> None:
    """Write the prompt, wrapped and centred on a dark panel so it reads on any colour,
    and the seed in a corner."""
    width, height = image.size
    font_size = max(10, min(width, height) // 14)
    font = ImageFont.load_default(size=font_size)
    margin = min(width, height) // 16
    line_height = round(font_size * 1.25)
    max_lines = (height - 2 * margin - line_height) // line_height
    lines = _fit_lines(
        lines=_wrap(text=prompt, font=font, max_width=width - 4 * margin),
        font=font,
        max_lines=max_lines,
        max_width=width - 4 * margin,
    )
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if lines:
        block = len(lines) * line_height
        top = (height - block) // 2
        draw.rounded_rectangle(
            (margin, top - margin // 2, width - margin, top + block + margin // 2),
            radius=margin // 2,
            fill=(0, 0, 0, 150),
        )
        for index, line in enumerate(lines):
            draw.text(
                (width // 2, top + index * line_height),
                line,
                font=font,
                fill=(255, 255, 255, 255),
                anchor="ma",
            )
    small = ImageFont.load_default(size=max(8, font_size // 2))
    draw.text(
        (width - margin, height - margin),
        f"seed {seed}",
        font=small,
        fill=(255, 255, 255, 230),
        stroke_width=1,
        stroke_fill=(0, 0, 0, 230),
        anchor="rd",
    )
    image.paste(Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"))


def _wrap(*, text: str, font: Font, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        for piece in _split_word(word=word, font=font, max_width=max_width):
            candidate = f"{current} {piece}" if current else piece
            if current and font.getlength(candidate) > max_width:
                lines.append(current)
                current = piece
            else:
                current = candidate
    if current:
        lines.append(current)
    return lines


def _split_word(*, word: str, font: Font, max_width: float) -> list[str]:
    """A word too long for one line, cut into pieces that fit (at least one character
    each, so even a very narrow image makes progress)."""
    pieces: list[str] = []
    current = ""
    for character in word:
        if current and font.getlength(current + character) > max_width:
            pieces.append(current)
            current = character
        else:
            current += character
    pieces.append(current)
    return pieces


def _fit_lines(*, lines: list[str], font: Font, max_lines: int, max_width: float) -> list[str]:
    """The lines that fit the height; when some are cut, the last shown ends in '...'."""
    if max_lines <= 0:
        return []
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    last = kept[-1]
    while last and font.getlength(last + "...") > max_width:
        last = last[:-1]
    kept[-1] = last.rstrip() + "..."
    return kept
