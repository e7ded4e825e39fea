"""Tenants' signing secrets, read from the one Secret the operator publishes in its own
namespace (never from tenant namespaces), cached briefly."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Protocol

import lightkube
from lightkube.resources import core_v1

from imagegen.api import meta
from imagegen.kube import objects

CACHE_SECONDS = 30.0
"""How long a read serves; a tenant missing from it triggers a fresh read sooner."""
MIN_REFRESH_SECONDS = 1.0
"""Reads for a missing tenant are at most this often, so a tenant without a secret yet
cannot make every delivery attempt read the Secret."""


class SecretSource(Protocol):
    """Where the dispatcher gets a tenant's signing secret."""

    async def get(self, tenant: str) -> str | None:
        """The tenant's `whsec_` secret, or None while there is none."""


class SigningSecrets:
    """tenant -> whsec_ secret, from Secret `imagegen-webhook-secrets`."""

    def __init__(
        self,
        *,
        kube: lightkube.AsyncClient,
        namespace: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._clock = clock
        self._secrets: dict[str, str] = {}
        self._read_at: float | None = None

    async def get(self, tenant: str) -> str | None:
        """The tenant's signing secret, or None while the operator has published none."""
        age = None if self._read_at is None else self._clock() - self._read_at
        stale = age is None or age > CACHE_SECONDS
        if stale or (tenant not in self._secrets and age is not None and age > MIN_REFRESH_SECONDS):
            await self._refresh()
        return self._secrets.get(tenant)

    async def _refresh(self) -> None:
        secret = await objects.get_or_none(
            self._kube, core_v1.Secret, meta.WEBHOOK_SECRETS, namespace=self._namespace
        )
        data = (secret.data if secret is not None else None) or {}
        self._secrets = {name: base64.b64decode(value).decode() for name, value in data.items()}
        self._read_at = self._clock()
