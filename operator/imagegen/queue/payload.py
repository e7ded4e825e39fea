"""What an enqueued item carries: `WorkItem`, written by the operator and read by workers.

The queue keeps payloads as opaque JSON (`model.ItemSpec.payload`); this module is the one
definition of their shape, so the side that enqueues and the side that works cannot drift
apart. On the wire the keys are camelCase, as in the CRDs:

    {"prompt": "a lighthouse at dawn", "negativePrompt": "fog", "width": 1024,
     "height": 1024, "seed": 7, "format": "png", "provider": "local",
     "providers": ["openai", "local"], "correlationId": "req-7f3a"}

`negativePrompt`, `seed`, `provider` and `correlationId` (which names the batch in the
worker's logs, see imagegen.logs) may be absent or null. Decoding checks every field
and raises ValueError naming the first bad one. Keys it does not know are ignored: during a
rolling upgrade the operator may be newer than its workers, and a field added to the
payload must not fail the items already queued.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import get_args

from imagegen.api import imagebatch
from imagegen.queue import model

FORMATS: tuple[imagebatch.Format, ...] = get_args(imagebatch.Format)
MAX_SIDE = 9999
"""Largest width or height, as the ImageBatch size pattern allows."""
MAX_SEED = 4_294_967_295
"""Largest seed, as the ImageBatch schema allows."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkItem:
    """One image to make: an ImageBatch item with the batch defaults applied, and the
    tenant's providers."""

    prompt: str
    negative_prompt: str | None = None
    width: int
    height: int
    seed: int | None = None
    format: imagebatch.Format = "png"
    provider: str | None = None
    """The provider asked for (the item's, else the batch default); tried first."""
    providers: tuple[str, ...]
    """The tenant's providers in order of fallback; `provider`, when set, is one of them."""
    correlation_id: str | None = None
    """The batch's correlation id, for the worker's log lines; never a secret."""

    def __post_init__(self) -> None:
        if not self.prompt:
            raise _invalid("prompt", "must not be empty")
        for field, side in (("width", self.width), ("height", self.height)):
            if not 1 <= side <= MAX_SIDE:
                raise _invalid(field, f"must be between 1 and {MAX_SIDE}, got {side}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise _invalid("seed", f"must be between 0 and {MAX_SEED}, got {self.seed}")
        if self.format not in FORMATS:
            raise _invalid("format", f"must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not self.providers or not all(self.providers):
            raise _invalid("providers", "must list at least one provider, none of them empty")
        if len(set(self.providers)) != len(self.providers):
            raise _invalid("providers", f"names must be unique, got {list(self.providers)}")
        if self.provider is not None and self.provider not in self.providers:
            raise _invalid(
                "provider",
                f"{self.provider!r} is not one of the providers ({', '.join(self.providers)})",
            )

    @classmethod
    def for_item(
        cls,
        *,
        item: imagebatch.Item,
        defaults: imagebatch.Defaults,
        providers: Sequence[str],
        correlation_id: str | None = None,
    ) -> WorkItem:
        """The work for one ImageBatch item: its own size and provider, else the batch's.

        Raises ValueError (naming the payload field) when the provider asked for is not
        among the tenant's `providers`.
        """
        width, _, height = (item.size or defaults.size).partition("x")
        return cls(
            prompt=item.prompt,
            negative_prompt=item.negative_prompt,
            width=int(width),
            height=int(height),
            seed=item.seed,
            format=defaults.format,
            provider=item.provider or defaults.provider,
            providers=tuple(providers),
            correlation_id=correlation_id,
        )

    def to_json(self) -> model.Json:
        """The payload as enqueued (`ItemSpec(id=..., payload=work.to_json())`)."""
        document: model.Json = {
            "prompt": self.prompt,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "providers": list(self.providers),
        }
        optional = {
            "negativePrompt": self.negative_prompt,
            "seed": self.seed,
            "provider": self.provider,
            "correlationId": self.correlation_id,
        }
        document.update({key: value for key, value in optional.items() if value is not None})
        return document

    @classmethod
    def from_json(cls, document: object) -> WorkItem:
        """Decode a payload; ValueError names the first field that is missing or wrong."""
        if not isinstance(document, dict):
            raise ValueError(f"payload: must be a JSON object, got {type(document).__name__}")
        # Keyword arguments are evaluated in order: the first bad field in the order of
        # the docstring is the one reported.
        return cls(
            prompt=_string(document, "prompt"),
            negative_prompt=_optional_string(document, "negativePrompt"),
            width=_integer(document, "width"),
            height=_integer(document, "height"),
            seed=None if document.get("seed") is None else _integer(document, "seed"),
            format=_format(document),
            provider=_optional_string(document, "provider"),
            providers=_names(document, "providers"),
            correlation_id=_optional_string(document, "correlationId"),
        )


def _invalid(field: str, problem: str) -> ValueError:
    return ValueError(f"payload.{field}: {problem}")


def _string(document: model.Json, field: str) -> str:
    value = document.get(field)
    if not isinstance(value, str):
        raise _invalid(field, f"must be a string, got {_kind(value)}")
    return value


def _optional_string(document: model.Json, field: str) -> str | None:
    return None if document.get(field) is None else _string(document, field)


def _integer(document: model.Json, field: str) -> int:
    value = document.get(field)
    # bool is an int in Python, but true is no width.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(field, f"must be an integer, got {_kind(value)}")
    return value


def _names(document: model.Json, field: str) -> tuple[str, ...]:
    value = document.get(field)
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise _invalid(field, "must be a list of provider names")
    return tuple(value)


def _format(document: model.Json) -> imagebatch.Format:
    value = document.get("format", "png")
    for choice in FORMATS:
        if value == choice:
            return choice
    raise _invalid("format", f"must be one of {', '.join(FORMATS)}, got {value!r}")


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
