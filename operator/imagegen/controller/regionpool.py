"""One Tenant in one region: apply its rendered pool, read back what it reports, and say
so in a RegionStatus. A failure here is this region's alone."""

from __future__ import annotations

import logging
from typing import Any

import lightkube

from imagegen import regions
from imagegen.api import operatorconfig, tenant
from imagegen.controller import livecache, observe, pools
from imagegen.render import labels, pool

logger = logging.getLogger(__name__)

UNREACHABLE = "RegionUnreachable"
FAILED = "ReconcileFailed"
KUBERNETES = "kubernetes"
"""The `kind` label of the region's reachability through its Kubernetes API."""


async def reconcile(
    *,
    region: regions.RegionClient,
    cache: livecache.LiveCache,
    obj: tenant.Tenant,
    config: operatorconfig.OperatorConfig,
) -> tuple[tenant.RegionStatus, int]:
    """Apply the Tenant's pool in the region; return its status and the writes made."""
    manifests = pool.tenant_pool(tenant=obj, region=region.name, config=config)
    if obj.spec.workers.pool == "shared":
        # The region's shared pool comes with its first shared tenant; the sweep removes
        # it when no shared tenant lists the region any more.
        manifests = [*manifests, *pool.shared_pool(region=region.name, config=config)]
    try:
        applied = await pools.apply(region=region, cache=cache, manifests=manifests)
    except regions.UNREACHABLE_ERRORS as error:
        logger.warning("region %s unreachable: %s", region.name, error)
        observe.region_answered(region=region.name, kind=KUBERNETES, reachable=False)
        return _failed(region.name, f"{UNREACHABLE}: {error}"), 0
    except lightkube.ApiError as error:
        logger.warning("region %s refused an object: %s", region.name, error.status.message)
        observe.region_answered(region=region.name, kind=KUBERNETES, reachable=True)
        return _failed(region.name, f"{FAILED}: {error.status.message}"), 0
    observe.region_answered(region=region.name, kind=KUBERNETES, reachable=True)
    assert obj.metadata.name is not None
    observe.pool_seen(tenant_name=obj.metadata.name, region=region.name, live=applied.live)
    return status_from_live(name=region.name, live=applied.live), applied.writes


async def remove(
    *,
    region: regions.RegionClient,
    cache: livecache.LiveCache,
    tenant_uid: str,
    config: operatorconfig.OperatorConfig,
) -> str | None:
    """Delete the Tenant's objects in the region; return an error message, or None."""
    try:
        await pools.delete_owned(
            region=region,
            cache=cache,
            namespace=config.workers.namespace,
            selector=labels.owned_by_uid(uid=tenant_uid),
        )
    except regions.UNREACHABLE_ERRORS as error:
        return f"{UNREACHABLE}: {error}"
    except lightkube.ApiError as error:
        return f"{FAILED}: {error.status.message}"
    return None


def status_from_live(*, name: str, live: dict[str, dict[str, Any]]) -> tenant.RegionStatus:
    """The region's status from its live Deployment and HPA (either may be absent)."""
    deployment_status = live.get("Deployment", {}).get("status", {})
    deployment_spec = live.get("Deployment", {}).get("spec", {})
    hpa_status = live.get("HorizontalPodAutoscaler", {}).get("status", {})
    return tenant.RegionStatus(
        name=name,
        ready_replicas=deployment_status.get("readyReplicas", 0),
        desired_replicas=deployment_spec.get("replicas"),
        hpa_current_replicas=hpa_status.get("currentReplicas"),
        hpa_desired_replicas=hpa_status.get("desiredReplicas"),
        conditions=[
            tenant.HPACondition.model_validate(condition)
            for condition in hpa_status.get("conditions", [])
        ]
        or None,
    )


def is_failed(status: tenant.RegionStatus) -> bool:
    """True when the last reconcile of the region did not get through."""
    return status.last_error is not None


def _failed(name: str, message: str) -> tenant.RegionStatus:
    return tenant.RegionStatus(name=name, last_error=message)
