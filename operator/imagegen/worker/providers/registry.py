"""Providers built by name, as a Tenant lists them (`spec.workers.providers[].name`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from imagegen.worker.providers import base, chain, local, openai


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProviderSettings:
    """Settings of every provider a worker may build; only the named ones are used."""

    local: local.LocalSettings = dataclasses.field(default_factory=local.LocalSettings)
    openai: openai.OpenAISettings = dataclasses.field(default_factory=openai.OpenAISettings)


Builder = Callable[[ProviderSettings, Mapping[str, str] | None], base.Provider]

_BUILDERS: dict[str, Builder] = {
    local.NAME: lambda settings, _environ: local.LocalProvider(settings=settings.local),
    openai.NAME: lambda settings, environ: openai.from_environment(
        settings=settings.openai, environ=environ
    ),
}

NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build(
    *, name: str, settings: ProviderSettings, environ: Mapping[str, str] | None = None
) -> base.Provider:
    """The provider called `name`. `environ` (default: the process environment) is where
    credentials are read from. Raises ConfigurationError naming an unknown provider or a
    missing credential."""
    _check_names(names=[name])
    return _BUILDERS[name](settings, environ)


def build_chain(
    *, names: Sequence[str], settings: ProviderSettings, environ: Mapping[str, str] | None = None
) -> chain.ProviderChain:
    """A chain of the named providers in the given order (a Tenant's list).

    Every name is checked before any provider is built, so a bad list leaves no open
    connections behind."""
    _check_names(names=names)
    return chain.ProviderChain(
        providers=[build(name=name, settings=settings, environ=environ) for name in names]
    )


def _check_names(*, names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in _BUILDERS]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise base.ConfigurationError(
            f"unknown provider {listed}; known providers: {', '.join(NAMES)}"
        )
    if len(set(names)) != len(names):
        raise base.ConfigurationError(f"providers: names must be unique, got {list(names)}")
