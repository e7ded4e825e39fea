"""The Tenants the gateway serves: namespace and limits, kept live by a watch, so that an
edit of a Tenant's rate limit applies to the next request without a restart."""

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

    def replace(self, objects: list[Any]) -> None:
        views = (_view(obj) for obj in objects)
        self._tenants = {view.name: view for view in views if view is not None}

    def apply(self, event: str, obj: Any) -> None:
        name = str(obj.metadata.name)
        view = None if event == "DELETED" else _view(obj)
        if view is None:
            self._tenants.pop(name, None)
        else:
            self._tenants[name] = view

    def get(self, name: str) -> TenantView | None:
        return self._tenants.get(name)


def _view(obj: Any) -> TenantView | None:
    try:
        parsed = tenant.Tenant.model_validate(obj.to_dict())
    except pydantic.ValidationError as error:
        # The apiserver validated it against the CRD; this gateway is older or newer.
        logger.warning("Tenant %s skipped, unreadable: %s", obj.metadata.name, error)
        return None
    spec = parsed.spec
    return TenantView(
        name=parsed.metadata.name or "",
        namespace=spec.namespace,
        requests_per_minute=spec.rate_limit.requests_per_minute,
        burst=spec.rate_limit.burst,
        images_per_minute=spec.quota.max_images_per_minute,
    )
