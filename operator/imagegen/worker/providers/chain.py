"""Per-item fallback: try a tenant's providers in order until one makes the image.

Every ProviderError moves on to the next provider, retryable or not: a request that one
provider refuses (a size it does not offer, its content policy) may suit another, and
each provider has already spent its own bounded retries before raising. When all fail,
the ProviderError raised lists every provider's error, and is retryable if any of them
was: some provider may succeed later, so the worker may put the item back. Anything other
than a ProviderError is a bug, not a provider failing, and is not caught.

The chain holds no state per item, so the worker can run many items through it at once
and they spread over the providers independently.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from imagegen.worker.providers import base

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Failure:
    """One provider's failed try at an item."""

    provider: str
    message: str
    retryable: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """The image, the provider that made it, and the providers that failed before it."""

    image: base.GeneratedImage
    provider: str
    failures: tuple[Failure, ...] = ()


class AllFailed(base.ProviderError):
    """Every provider of the chain failed; `failures` says how, in the order tried."""

    def __init__(self, *, failures: tuple[Failure, ...]) -> None:
        details = "; ".join(f"{failure.provider}: {failure.message}" for failure in failures)
        super().__init__(
            f"all providers failed: {details}",
            retryable=any(failure.retryable for failure in failures),
        )
        self.failures = failures


class ProviderChain:
    """An ordered list of providers, tried in turn for each item."""

    def __init__(self, *, providers: Sequence[base.Provider]) -> None:
        names = [provider.name for provider in providers]
        if not names:
            raise base.ConfigurationError("providers: at least one provider is required")
        if len(set(names)) != len(names):
            raise base.ConfigurationError(f"providers: names must be unique, got {names}")
        self._providers = tuple(providers)

    @property
    def names(self) -> tuple[str, ...]:
        """Provider names in the order they are tried."""
        return tuple(provider.name for provider in self._providers)

    async def generate(
        self, *, request: base.GenerationRequest, preferred: str | None = None
    ) -> Outcome:
        """Make the image with the first provider that can.

        `preferred` (the item's own provider) is tried first and the rest in their
        order; a preferred name that is not in the chain is a non-retryable error,
        because the tenant has not enabled that provider.
        """
        failures: list[Failure] = []
        for provider in self._ordered(preferred=preferred):
            try:
                image = await provider.generate(request=request)
            except base.ProviderError as error:
                logger.warning("provider %s failed: %s", provider.name, error.message)
                failures.append(
                    Failure(
                        provider=provider.name, message=error.message, retryable=error.retryable
                    )
                )
                continue
            return Outcome(image=image, provider=provider.name, failures=tuple(failures))
        raise AllFailed(failures=tuple(failures))

    async def aclose(self) -> None:
        """Close every provider, even when one of them fails to close."""
        errors: list[Exception] = []
        for provider in self._providers:
            try:
                await provider.aclose()
            except Exception as error:
                # Keep going: the other providers' connections must still be released.
                errors.append(error)
        if errors:
            raise ExceptionGroup("closing providers failed", errors)

    def _ordered(self, *, preferred: str | None) -> list[base.Provider]:
        if preferred is None:
            return list(self._providers)
        first = [provider for provider in self._providers if provider.name == preferred]
        if not first:
            raise base.ProviderError(
                f"provider {preferred!r} is not enabled for this tenant "
                f"(enabled: {', '.join(self.names)})",
                retryable=False,
            )
        return first + [provider for provider in self._providers if provider.name != preferred]
