"""Encoding images to the formats a batch may ask for, shared by the providers.

These functions are CPU-bound and synchronous: callers run them in a thread.
"""

from __future__ import annotations

import io

from PIL import Image

from imagegen.api import imagebatch

PILLOW_FORMATS: dict[imagebatch.Format, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}

# Fixed encoder options: the same pixels must always give the same bytes, and the defaults
# of Pillow's encoders are not promised to stay put between releases.
_OPTIONS: dict[imagebatch.Format, dict[str, int | bool]] = {
    "png": {"optimize": False, "compress_level": 6},
    "jpeg": {"quality": 90, "optimize": False, "progressive": False},
    "webp": {"quality": 90, "method": 4, "lossless": False},
}


def encode(*, image: Image.Image, format: imagebatch.Format) -> bytes:
    """The image encoded as `format`; JPEG has no alpha, so RGB is used for it."""
    if format == "jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=PILLOW_FORMATS[format], **_OPTIONS[format])
    return buffer.getvalue()


def transcode(*, data: bytes, format: imagebatch.Format) -> tuple[bytes, int, int]:
    """Check that `data` is an image and return it as `format`, with its width and height.

    Bytes already in the wanted format are returned unchanged. Raises ValueError when the
    data is not an image Pillow can read.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.format == PILLOW_FORMATS[format]:
                image.verify()
                return data, width, height
            image.load()
            return encode(image=image, format=format), width, height
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        # Pillow reports undecodable data as OSError, and some truncated files as
        # SyntaxError from inside its parsers.
        raise ValueError(f"not a readable image: {error}") from error
