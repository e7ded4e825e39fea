"""Tenant reconciliation: worker pools in every allowed region, the tenant's namespace
and API key in the management cluster, and a status that says how all of it stands.

Every path is level-triggered: create, update, resume and the periodic drift check all
run the same `reconcile`, which reads first and writes only what differs.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
from collections.abc import Callable, Mapping
from typing import Any

import kopf
import lightkube
from lightkube.models import rbac_v1

from imagegen import logs, regions
from imagegen.api import meta, operatorconfig, tenant
from imagegen.controller import (
    apikeys,
    autoscaling,
    bodies,
    capacity,
    conditions,
    livecache,
    namespaces,
    observe,
    regionpool,
    secretaccess,
    webhooksecrets,
)
from imagegen.render import profile

KIND = "Tenant"
READY, DEGRADED, AUTOSCALING = "Ready", "Degraded", "Autoscaling"
CAPACITY = "Capacity"


@dataclasses.dataclass(kw_only=True)
class Context:
    """What the Tenant handlers share: configuration, clients, a lock per Tenant."""

    config: operatorconfig.OperatorConfig
    registry: regions.Registry
    caches: dict[str, livecache.LiveCache]
    """What each region holds of ours, by region name."""
    management: lightkube.AsyncClient
    operator_subject: rbac_v1.Subject
    """Who the operator is to RBAC: the subject it binds in each tenant namespace."""
    pods: dict[str, capacity.RegionPods] = dataclasses.field(default_factory=dict)
    """Each region's worker pods, kept by one watch per region (capacity in status)."""
    clock: Callable[[], datetime.datetime] = bodies.utc_now
    locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock)
    )


@dataclasses.dataclass(kw_only=True)
class Outcome:
    """The status to write and the Events worth posting."""

    status: tenant.TenantStatus
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    """(type, reason, message) of each Event."""


def register(*, registry: kopf.OperatorRegistry, context: Context) -> None:
    """Register the Tenant handlers on the registry."""
    resource = (meta.GROUP, meta.VERSION, tenant.Tenant.info.plural)

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, registry=registry)
    async def reconcile_tenant(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        with logs.bound(tenant=body.metadata.name), observe.handling(KIND):
            await _reconcile_and_report(context=context, body=body, patch=patch)

    @kopf.timer(*resource, registry=registry, interval=context.config.drift_check_seconds)
    async def check_drift(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        with logs.bound(tenant=body.metadata.name), observe.handling(KIND):
            await _reconcile_and_report(context=context, body=body, patch=patch)

    @kopf.on.delete(*resource, registry=registry)
    async def remove_tenant(body: kopf.Body, **_: Any) -> None:
        with logs.bound(tenant=body.metadata.name), observe.handling(KIND):
            await cleanup(context=context, body=body)
        context.locks.pop(str(body.metadata.uid), None)
        observe.tenant_gone(
            name=str(body.metadata.name), regions_left=list(context.registry.names())
        )


async def _reconcile_and_report(*, context: Context, body: kopf.Body, patch: kopf.Patch) -> None:
    uid = str(body.metadata.uid)
    # Timers run beside the other handlers; one reconcile per Tenant at a time keeps a
    # key rotation from being planned twice.
    async with context.locks[uid]:
        outcome = await reconcile(context=context, body=body)
    for event_type, reason, message in outcome.events:
        kopf.event(body, type=event_type, reason=reason, message=message)
    new_status = outcome.status.model_dump(mode="json", exclude_none=True)
    if new_status != _current_status(body):
        patch.status.update(new_status)


async def reconcile(*, context: Context, body: Mapping[str, Any]) -> Outcome:
    """Bring one Tenant's world in line with its spec; return the status to write."""
    obj = tenant.Tenant.model_validate(bodies.plain(body))
    previous = obj.status or tenant.TenantStatus()
    generation = obj.metadata.generation
    unknown = [name for name in obj.spec.regions if context.registry.get(name) is None]
    if unknown:
        known = ", ".join(context.registry.names())
        return _refused(
            previous=previous,
            generation=generation,
            now=context.clock(),
            reason="UnknownRegion",
            message=f"spec.regions: unknown region(s) {', '.join(unknown)};"
            f" the operator knows {known}",
        )
    try:
        profile.resolve(workers=obj.spec.workers, config=context.config)
    except ValueError as error:
        reason = (
            "UnknownProfile" if isinstance(error, profile.UnknownProfileError) else "InvalidProfile"
        )
        return _refused(
            previous=previous,
            generation=generation,
            now=context.clock(),
            reason=reason,
            message=str(error),
        )
    exists, refusal = await namespaces.check(
        client=context.management, name=obj.spec.namespace, tenant_name=_name(obj)
    )
    if refusal is not None:
        return _refused(
            previous=previous,
            generation=generation,
            now=context.clock(),
            reason=refusal.reason,
            message=f"spec.namespace: {refusal.message}",
        )
    observe.tenant_seen(obj)
    events = await _reconcile_management(context=context, obj=obj, namespace_exists=exists)
    region_statuses, region_events = await _reconcile_regions(
        context=context, obj=obj, previous=previous
    )
    events.extend(region_events)
    events.extend(
        capacity.observe_regions(
            obj=obj, statuses=region_statuses, previous=previous, pods=context.pods
        )
    )
    return Outcome(
        status=_status(
            previous=previous,
            region_statuses=region_statuses,
            wanted=obj.spec.regions,
            generation=generation,
            now=context.clock(),
        ),
        events=events,
    )


async def _reconcile_management(
    *, context: Context, obj: tenant.Tenant, namespace_exists: bool
) -> list[tuple[str, str, str]]:
    """The tenant's namespace, the operator's Secret access there, its API key and its
    webhook signing secret; the Events worth posting."""
    events: list[tuple[str, str, str]] = []
    if not namespace_exists:
        await namespaces.create(
            client=context.management, name=obj.spec.namespace, tenant_name=_name(obj)
        )
        events.append(("Normal", "NamespaceCreated", f"created namespace {obj.spec.namespace}"))
    if await _grant_secret_access(context=context, obj=obj):
        events.append(
            (
                "Normal",
                "SecretAccessGranted",
                f"bound the operator to {meta.TENANT_SECRETS_ROLE} in {obj.spec.namespace}",
            )
        )
    if await apikeys.reconcile(
        client=context.management,
        tenant_name=_name(obj),
        tenant_uid=_uid(obj),
        namespace=obj.spec.namespace,
        index_namespace=context.config.operator_namespace,
        rotation=(obj.metadata.annotations or {}).get(apikeys.ROTATE_ANNOTATION, ""),
        grace=datetime.timedelta(seconds=context.config.api_key_grace_seconds),
        now=context.clock(),
    ):
        events.append(
            ("Normal", "ApiKeyUpdated", f"API key in Secret {apikeys.secret_name(_name(obj))}")
        )
    if await webhooksecrets.reconcile(
        client=context.management,
        tenant_name=_name(obj),
        tenant_uid=_uid(obj),
        namespace=obj.spec.namespace,
        published_namespace=context.config.operator_namespace,
    ):
        events.append(
            (
                "Normal",
                "WebhookSecretUpdated",
                f"webhook signing secret in Secret {apikeys.secret_name(_name(obj))}",
            )
        )
    return events


async def _grant_secret_access(*, context: Context, obj: tenant.Tenant) -> bool:
    return await secretaccess.grant(
        client=context.management,
        namespace=obj.spec.namespace,
        subject=context.operator_subject,
        tenant_name=_name(obj),
    )


async def cleanup(*, context: Context, body: kopf.Body) -> None:
    """Delete the Tenant's objects in every region and its API key. A region that cannot
    be reached is left to the orphan sweep, so deletion never hangs on a dead region."""
    obj = tenant.Tenant.model_validate(bodies.plain(body))
    results = await asyncio.gather(
        *(
            regionpool.remove(
                region=region,
                cache=context.caches[region.name],
                tenant_uid=_uid(obj),
                config=context.config,
            )
            for region in context.registry.clients.values()
        )
    )
    for region_name, error in zip(context.registry.names(), results, strict=True):
        if error is not None:
            kopf.warn(
                body,
                reason="CleanupDeferred",
                message=f"region {region_name}: {error}; the orphan sweep will remove the rest",
            )
    await webhooksecrets.unpublish(
        client=context.management,
        tenant_names=[_name(obj)],
        namespace=context.config.operator_namespace,
    )
    await apikeys.delete_index(
        client=context.management,
        tenant_name=_name(obj),
        namespace=context.config.operator_namespace,
    )
    # A namespace that is going, or is no longer this tenant's, takes its Secret with it
    # or keeps it for its new owner: either way not ours to touch.
    if await namespaces.holds_tenant(
        client=context.management, name=obj.spec.namespace, tenant_name=_name(obj)
    ):
        await _grant_secret_access(context=context, obj=obj)
        await apikeys.delete_secret(
            client=context.management, tenant_name=_name(obj), namespace=obj.spec.namespace
        )
        await secretaccess.revoke(client=context.management, namespace=obj.spec.namespace)


async def _reconcile_regions(
    *, context: Context, obj: tenant.Tenant, previous: tenant.TenantStatus
) -> tuple[list[tenant.RegionStatus], list[tuple[str, str, str]]]:
    """Apply in every wanted region and remove from every dropped one, all at once."""
    wanted = obj.spec.regions
    # Regions the registry no longer knows cannot be cleaned from here; the sweep's job.
    dropped = [
        r.name
        for r in previous.regions or ()
        if r.name not in wanted and context.registry.get(r.name) is not None
    ]
    applies = [
        regionpool.reconcile(
            region=_client(context, name),
            cache=context.caches[name],
            obj=obj,
            config=context.config,
        )
        for name in wanted
    ]
    removals = [
        regionpool.remove(
            region=_client(context, name),
            cache=context.caches[name],
            tenant_uid=_uid(obj),
            config=context.config,
        )
        for name in dropped
    ]
    applied = await asyncio.gather(*applies)
    removed = await asyncio.gather(*removals)
    events: list[tuple[str, str, str]] = []
    statuses: list[tenant.RegionStatus] = []
    before = {r.name: r for r in previous.regions or ()}
    for name, (status, writes) in zip(wanted, applied, strict=True):
        statuses.append(status)
        if writes:
            events.append(("Normal", "PoolApplied", f"region {name}: {writes} object(s) applied"))
        if regionpool.is_failed(status) and not regionpool.is_failed(before.get(name, status)):
            events.append(("Warning", _reason_of(status), f"region {name}: {status.last_error}"))
    for name, error in zip(dropped, removed, strict=True):
        observe.tenant_gone(name=_name(obj), regions_left=[name])
        if error is None:
            events.append(("Normal", "PoolRemoved", f"region {name} removed from spec.regions"))
        else:
            # Kept in status so that the next pass tries the removal again.
            statuses.append(tenant.RegionStatus(name=name, last_error=f"removal pending: {error}"))
    return statuses, events


def _status(
    *,
    previous: tenant.TenantStatus,
    region_statuses: list[tenant.RegionStatus],
    wanted: list[str],
    generation: int | None,
    now: datetime.datetime,
) -> tenant.TenantStatus:
    failed = [r for r in region_statuses if regionpool.is_failed(r)]
    failed_wanted = [r for r in failed if r.name in wanted]
    current = previous.conditions or []
    if failed_wanted:
        summary = "; ".join(f"{r.name}: {r.last_error}" for r in failed_wanted)
        current = conditions.set_condition(
            current,
            type=READY,
            status="False",
            reason=_reason_of(failed_wanted[0]),
            message=summary,
            generation=generation,
            now=now,
        )
    else:
        workers = ", ".join(
            f"{r.name} {r.ready_replicas or 0}/{r.desired_replicas or 0}" for r in region_statuses
        )
        current = conditions.set_condition(
            current,
            type=READY,
            status="True",
            reason="PoolsReconciled",
            message=f"worker pools applied in every region; ready workers: {workers}",
            generation=generation,
            now=now,
        )
    for kind, said in (
        (AUTOSCALING, autoscaling.summarize(region_statuses)),
        (CAPACITY, capacity.summarize(region_statuses)),
    ):
        current = conditions.set_condition(
            current,
            type=kind,
            status=said.status,
            reason=said.reason,
            message=said.message,
            generation=generation,
            now=now,
        )
    if failed:
        current = conditions.set_condition(
            current,
            type=DEGRADED,
            status="True",
            reason=_reason_of(failed[0]),
            message=f"{len(failed)} of {len(region_statuses)} region(s) not reconciled: "
            + ", ".join(r.name for r in failed),
            generation=generation,
            now=now,
        )
    else:
        current = conditions.set_condition(
            current,
            type=DEGRADED,
            status="False",
            reason="AllRegionsReconciled",
            message="",
            generation=generation,
            now=now,
        )
    return tenant.TenantStatus(
        observed_generation=generation, conditions=current, regions=region_statuses
    )


def _refused(
    *,
    previous: tenant.TenantStatus,
    generation: int | None,
    now: datetime.datetime,
    reason: str,
    message: str,
) -> Outcome:
    """A spec that passes the schema but cannot be realised: say why, change nothing."""
    current = conditions.set_condition(
        previous.conditions or [],
        type=READY,
        status="False",
        reason=reason,
        message=message,
        generation=generation,
        now=now,
    )
    status = tenant.TenantStatus(
        observed_generation=generation, conditions=current, regions=previous.regions
    )
    already_said = conditions.find(previous.conditions, READY)
    events = (
        [] if already_said and already_said.reason == reason else [("Warning", reason, message)]
    )
    return Outcome(status=status, events=events)


def _reason_of(status: tenant.RegionStatus) -> str:
    return (status.last_error or "").split(":", 1)[0] or regionpool.FAILED


def _client(context: Context, name: str) -> regions.RegionClient:
    client = context.registry.get(name)
    assert client is not None, f"region {name} was checked against the registry"
    return client


def _current_status(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(bodies.plain(body).get("status") or {})


def _name(obj: tenant.Tenant) -> str:
    assert obj.metadata.name is not None
    return obj.metadata.name


def _uid(obj: tenant.Tenant) -> str:
    assert obj.metadata.uid is not None
    return obj.metadata.uid
