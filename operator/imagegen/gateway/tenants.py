"""The Tenants the gateway serves: namespace and limits, kept live by a watch, so that an
edit of a Tenant's rate limit applies to the next request without a restart.

Only what the operator has accepted is served: a Tenant's namespace is trusted once its
status has observed that generation and holds no refusal (a namespace another tenant owns,
an unknown region). A Tenant edited but not yet reconciled keeps its last accepted view;
a refused one is served nothing, so that a key can never reach another tenant's batches.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pydantic

from imagegen.api import tenant

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TenantView:
    """What the gateway needs of a Tenant."""

    name: str
    namespace: str
    requests_per_minute: int
    burst: int
    images_per_minute: int


class TenantDirectory:
    """Tenants by name, fed by a Reflector of Tenants."""

    def __init__(self) -> None:
        self._tenants: dict[str, TenantView] = {}
        self._refused: dict[str, str] = {}

    def replace(self, objects: list[Any]) -> None:
        previous = self._tenants
        self._tenants, self._refused = {}, {}
        for obj in objects:
            self._take(obj, previous=previous.get(str(obj.metadata.name)))

    def apply(self, event: str, obj: Any) -> None:
        name = str(obj.metadata.name)
        previous = self._tenants.pop(name, None)
        self._refused.pop(name, None)
        if event != "DELETED":
            self._take(obj, previous=previous)

    def get(self, name: str) -> TenantView | None:
        return self._tenants.get(name)

    def refusal(self, name: str) -> str | None:
        """Why the operator refused the Tenant's spec, when it did."""
        return self._refused.get(name)

    def _take(self, obj: Any, *, previous: TenantView | None) -> None:
        name = str(obj.metadata.name)
        parsed = _parse(obj)
        if parsed is None:
            return
        refusal = _refusal(parsed)
        if refusal is not None:
            self._refused[name] = refusal
        elif _observed(parsed):
            self._tenants[name] = _view(parsed)
        elif previous is not None:
            self._tenants[name] = previous


def _parse(obj: Any) -> tenant.Tenant | None:
    try:
        return tenant.Tenant.model_validate(obj.to_dict())
    except pydantic.ValidationError as error:
        # The apiserver validated it against the CRD; this gateway is older or newer.
        logger.warning("Tenant %s skipped, unreadable: %s", obj.metadata.name, error)
        return None


def _observed(parsed: tenant.Tenant) -> bool:
    status = parsed.status
    return status is not None and status.observed_generation == parsed.metadata.generation


def _refusal(parsed: tenant.Tenant) -> str | None:
    conditions = (parsed.status.conditions if parsed.status else None) or []
    ready = next((c for c in conditions if c.type == tenant.READY), None)
    if ready is not None and ready.status == "False" and ready.reason in tenant.SPEC_REFUSALS:
        return f"{ready.reason}: {ready.message}"
    return None


def _view(parsed: tenant.Tenant) -> TenantView:
    spec = parsed.spec
    return TenantView(
        name=parsed.metadata.name or "",
        namespace=spec.namespace,
        requests_per_minute=spec.rate_limit.requests_per_minute,
        burst=spec.rate_limit.burst,
        images_per_minute=spec.quota.max_images_per_minute,
    )
