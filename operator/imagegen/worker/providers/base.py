"""The one interface every provider implements, and the values that cross it."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from imagegen.api import imagebatch

CONTENT_TYPES: dict[imagebatch.Format, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    """One image to generate: an item of a batch with the batch defaults applied."""

    prompt: str
    negative_prompt: str | None = None
    width: int
    height: int
    seed: int | None = None
    """None lets the provider choose; providers that can be seeded treat None as 0, so
    an unseeded item is still repeatable."""
    format: imagebatch.Format = "png"

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"size: must be positive, got {self.width}x{self.height}")

    @property
    def size(self) -> str:
        """The size as WIDTHxHEIGHT, as the API spells it."""
        return f"{self.width}x{self.height}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class GeneratedImage:
    """An encoded image and who made it."""

    data: bytes
    content_type: str
    provider: str
    width: int
    height: int

    def __repr__(self) -> str:
        # The default repr would dump megabytes of image bytes into a log line.
        return (
            f"GeneratedImage(provider={self.provider!r}, content_type={self.content_type!r}, "
            f"size={self.width}x{self.height}, bytes={len(self.data)})"
        )


class ProviderError(Exception):
    """A provider could not produce the image.

    `retryable` says whether the same request may succeed later (overload, timeout,
    network): the worker may then put the item back. A non-retryable error means the
    request itself was refused (bad size, policy, credentials) and retrying it unchanged
    is pointless. Messages are shown to tenants and logged, so they never contain keys.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class ConfigurationError(ValueError):
    """A provider is misconfigured (unknown name, missing credentials); found at start,
    before any item is taken."""


class Provider(Protocol):
    """An image generator. Implementations keep the event loop free: rendering runs in a
    thread, network calls are awaited."""

    @property
    def name(self) -> str:
        """The name tenants use for this provider, such as local."""
        ...

    async def generate(self, *, request: GenerationRequest) -> GeneratedImage:
        """Make one image, or raise ProviderError."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources; the provider is not used after."""
        ...
