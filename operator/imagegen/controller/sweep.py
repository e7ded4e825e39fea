"""The periodic sweep across regions: objects whose Tenant no longer exists (matched by
uid, so a re-created Tenant of the same name is a different owner), shared pools no
shared tenant uses, and API key indexes and published webhook secrets of vanished Tenants."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import lightkube
from lightkube.resources import core_v1

from imagegen import regions, resources, supervision
from imagegen.api import operatorconfig, tenant
from imagegen.controller import apikeys, livecache, pools, webhooksecrets
from imagegen.render import labels, pool

logger = logging.getLogger(__name__)

_RETRIED_ERRORS: tuple[type[Exception], ...] = (lightkube.ApiError, *regions.UNREACHABLE_ERRORS)


async def run_forever(
    *,
    config: operatorconfig.OperatorConfig,
    registry: regions.Registry,
    caches: dict[str, livecache.LiveCache],
    management: lightkube.AsyncClient,
) -> None:
    """Sweep every drift-check interval until cancelled; a failed sweep is logged and
    tried again next time."""
    while True:
        try:
            await sweep_once(config=config, registry=registry, caches=caches, management=management)
        except _RETRIED_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("sweep failed, next try in %ss: %s", config.drift_check_seconds, error)
        await asyncio.sleep(config.drift_check_seconds)


async def sweep_once(
    *,
    config: operatorconfig.OperatorConfig,
    registry: regions.Registry,
    caches: dict[str, livecache.LiveCache],
    management: lightkube.AsyncClient,
) -> int:
    """One sweep; return the number of objects deleted.

    What the regions and the key index hold is listed before the Tenants are: a Tenant
    created between the lists is then in the Tenant list, so its brand-new objects are
    never taken for orphans.
    """
    holdings: dict[str, set[str]] = {}
    for region in registry.clients.values():
        try:
            holdings[region.name] = await _owner_uids(region=region, config=config)
        except regions.UNREACHABLE_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("sweep: region %s unreachable: %s", region.name, error)
    indexes = await _key_indexes(management=management, config=config)
    published = await webhooksecrets.published_tenants(
        client=management, namespace=config.operator_namespace
    )
    tenants = [
        tenant.Tenant.model_validate(resources.as_dict(obj))
        async for obj in management.list(resources.Tenant)
    ]
    live_uids = {t.metadata.uid for t in tenants if t.metadata.uid}
    shared_regions = {
        name for t in tenants if t.spec.workers.pool == "shared" for name in t.spec.regions
    }
    deleted = 0
    for region_name, owners in holdings.items():
        region = registry.clients[region_name]
        try:
            deleted += await _clean_region(
                region=region,
                cache=caches[region_name],
                config=config,
                orphans=owners - live_uids,
                keep_shared_pool=region_name in shared_regions,
            )
        except regions.UNREACHABLE_ERRORS as error:
            supervision.stop_if_cancelled()  # a cancel a client turned into an error
            logger.warning("sweep: region %s unreachable: %s", region_name, error)
    for name, owner in indexes.items():
        if owner not in live_uids:
            logger.info("sweep: removing API key index %s of a vanished tenant", name)
            await management.delete(core_v1.ConfigMap, name, namespace=config.operator_namespace)
            deleted += 1
    # The published secrets are keyed by tenant name (what the gateway knows a batch by).
    vanished = published - {t.metadata.name for t in tenants if t.metadata.name}
    if vanished:
        logger.info("sweep: withdrawing webhook secrets of vanished tenants %s", sorted(vanished))
        await webhooksecrets.unpublish(
            client=management, tenant_names=sorted(vanished), namespace=config.operator_namespace
        )
        deleted += len(vanished)
    return deleted


async def _owner_uids(
    *, region: regions.RegionClient, config: operatorconfig.OperatorConfig
) -> set[str]:
    """Uids of the Tenants that own objects in the region."""
    found: set[str] = set()
    managed: dict[str, Any] = labels.managed()
    for resource in pools.OWNED_KINDS:
        async with region.call() as client:
            async for obj in client.list(
                resource, namespace=config.workers.namespace, labels=managed
            ):
                uid = _labels(obj).get(labels.TENANT_UID)
                if uid:
                    found.add(uid)
    return found


async def _clean_region(
    *,
    region: regions.RegionClient,
    cache: livecache.LiveCache,
    config: operatorconfig.OperatorConfig,
    orphans: set[str],
    keep_shared_pool: bool,
) -> int:
    namespace = config.workers.namespace
    deleted = 0
    for uid in sorted(orphans):
        logger.info(
            "sweep: region %s: removing objects of vanished tenant uid %s", region.name, uid
        )
        deleted += await pools.delete_owned(
            region=region, cache=cache, namespace=namespace, selector=labels.owned_by_uid(uid=uid)
        )
    if keep_shared_pool:
        shared = pool.shared_pool(region=region.name, config=config)
        await pools.apply(region=region, cache=cache, manifests=shared)
    else:
        deleted += await pools.delete_owned(
            region=region,
            cache=cache,
            namespace=namespace,
            selector=labels.shared_pool(region=region.name),
        )
    return deleted


async def _key_indexes(
    *, management: lightkube.AsyncClient, config: operatorconfig.OperatorConfig
) -> dict[str, str]:
    """Name -> owner uid of every API key index ConfigMap."""
    return {
        obj.metadata.name: _labels(obj).get(labels.TENANT_UID, "")
        async for obj in management.list(
            core_v1.ConfigMap,
            namespace=config.operator_namespace,
            labels={apikeys.INDEX_LABEL: "true"},
        )
        if obj.metadata is not None and obj.metadata.name is not None
    }


def _labels(obj: Any) -> dict[str, str]:
    metadata = getattr(obj, "metadata", None)
    return dict((metadata.labels if metadata else None) or {})
