"""Worker pools as manifests: what the operator applies in one regional cluster.

Every pool lives in the workers namespace (config.workers.namespace). A `pool: dedicated`
Tenant gets its own pool in each region: a ServiceAccount, Deployment,
HorizontalPodAutoscaler and PodDisruptionBudget, all named worker-<tenant>. A `pool: shared`
Tenant gets none: the region's shared pool (worker-shared, `shared_pool`) serves its items.

Manifests are plain dicts, in apply order, holding only the fields we decide, each spelled
as the apiserver returns it; fresh dicts every call, so no two fields share an object.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from imagegen.api import objectstore, operatorconfig, podprofile, redisconfig, tenant
from imagegen.render import labels, profile, quantity

Manifest = dict[str, Any]

SHARED_POOL: Final = "worker-shared"
"""Name of every object of a region's shared pool."""
DEDICATED_PREFIX: Final = "worker-"
"""A dedicated pool's objects are named this followed by the Tenant's name."""

# Restricted Pod Security refuses root; a fixed uid and gid (not 0, not an image default)
# make file ownership on the emptyDir predictable.
_RUN_AS: Final = 10001
_PORT: Final = "http"
_TMP: Final = "tmp"
_IMAGES: Final = "images"
IMAGES_PATH: Final = "/var/lib/imagegen/images"
"""Where a worker stores images: a volume, since the root filesystem is read-only."""
_REDIS_CA: Final = "redis-ca"
REDIS_CA_DIR: Final = "/etc/imagegen/redis-ca"
"""Where a worker finds the region's Redis CA bundle (as `ca.crt`), when the region has one."""
_GRACE_MARGIN_SECONDS: Final = 15
"""A stopping worker hands items back this long before the kubelet's SIGKILL."""


class UnknownRegionError(ValueError):
    """The operator config has no region of that name."""

    def __init__(self, *, region: str, config: operatorconfig.OperatorConfig) -> None:
        known = ", ".join(known.name for known in config.regions)
        super().__init__(f"unknown region {region!r}; the operator config knows: {known}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Pool:
    """What tells one pool from another; the rest comes from the operator config."""

    name: str
    labels: dict[str, str]
    workers: tenant.Workers
    profile: podprofile.PodProfile
    """The resolved worker pod profile (render.profile.resolve)."""
    args: list[str]
    env: list[Manifest]
    """Variables of this pool, before those every pool has."""


def tenant_pool(
    *, tenant: tenant.Tenant, region: str, config: operatorconfig.OperatorConfig
) -> list[Manifest]:
    """The objects one Tenant needs in one region, in apply order.

    Dedicated: the workers Namespace, then ServiceAccount, Deployment, HPA and PDB named
    worker-<tenant>. Shared: only the Namespace; the region's shared pool serves its items.
    Without metadata.uid (a Tenant from a file) the tenant-uid label is left out.
    Raises UnknownRegionError for a region the config lacks, profile.UnknownProfileError
    for a profile it lacks, and ValueError for a Tenant without a name.
    """
    regional = _region(region=region, config=config)
    manifests = [_namespace(config=config)]
    if tenant.spec.workers.pool == "shared":
        return manifests
    name = _tenant_name(tenant)
    pool = _Pool(
        name=DEDICATED_PREFIX + name,
        labels=labels.dedicated_pool(
            tenant_name=name, tenant_uid=tenant.metadata.uid, region=region
        ),
        workers=tenant.spec.workers,
        profile=profile.resolve(workers=tenant.spec.workers, config=config),
        args=["worker", "--region", region, "--tenant", name],
        env=[
            _env("IMAGEGEN_TENANT", name),
            _env("IMAGEGEN_REGION", region),
            _env("IMAGEGEN_TIER", tenant.spec.tier),
        ],
    )
    return [*manifests, *_pool_objects(pool=pool, region=regional, config=config)]


def shared_pool(*, region: str, config: operatorconfig.OperatorConfig) -> list[Manifest]:
    """The region's shared pool for all `pool: shared` Tenants, sized by config.shared_pool.

    The workers Namespace, then ServiceAccount, Deployment, HPA and PDB named worker-shared,
    labelled pool=shared and with no Tenant's labels: no Tenant's cleanup removes them.
    Raises UnknownRegionError for a region the config lacks.
    """
    regional = _region(region=region, config=config)
    pool = _Pool(
        name=SHARED_POOL,
        labels=labels.shared_pool(region=region),
        workers=config.shared_pool,
        profile=profile.resolve(workers=config.shared_pool, config=config),
        args=["worker", "--region", region, "--pool", "shared"],
        env=[_env("IMAGEGEN_REGION", region)],
    )
    return [_namespace(config=config), *_pool_objects(pool=pool, region=regional, config=config)]


def _region(*, region: str, config: operatorconfig.OperatorConfig) -> operatorconfig.Region:
    regional = config.region(region)
    if regional is None:
        raise UnknownRegionError(region=region, config=config)
    return regional


def _tenant_name(tenant: tenant.Tenant) -> str:
    name = tenant.metadata.name
    if name is None:
        raise ValueError("metadata.name: required")
    # The Tenant model refuses the name 'shared', so worker-<name> never is worker-shared.
    return name


def _pool_objects(
    *, pool: _Pool, region: operatorconfig.Region, config: operatorconfig.OperatorConfig
) -> list[Manifest]:
    return [
        _service_account(pool=pool, config=config),
        _deployment(pool=pool, region=region, config=config),
        _autoscaler(pool=pool, config=config),
        _disruption_budget(pool=pool, config=config),
    ]


def _metadata(*, pool: _Pool, config: operatorconfig.OperatorConfig) -> Manifest:
    return {"name": pool.name, "namespace": config.workers.namespace, "labels": dict(pool.labels)}


def _selector(pool: _Pool) -> Manifest:
    return {"matchLabels": labels.selector(pool_labels=pool.labels)}


def _namespace(*, config: operatorconfig.OperatorConfig) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": config.workers.namespace, "labels": labels.workers_namespace()},
    }


def _service_account(*, pool: _Pool, config: operatorconfig.OperatorConfig) -> Manifest:
    # Workers talk to Redis only: no API token in the pod, and no RBAC at all.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(pool=pool, config=config),
        "automountServiceAccountToken": False,
    }


def _deployment(
    *, pool: _Pool, region: operatorconfig.Region, config: operatorconfig.OperatorConfig
) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(pool=pool, config=config),
        # No replicas: the HPA owns the count, and a replicas field would reset it to
        # ours on every apply, fighting the HPA.
        "spec": {
            "selector": _selector(pool),
            "template": {
                "metadata": {
                    "labels": dict(pool.labels),
                    "annotations": {podprofile.PROFILE_ANNOTATION: profile.digest(pool.profile)},
                },
                "spec": {
                    **profile.pod_fields(
                        profile=pool.profile, selector=labels.selector(pool_labels=pool.labels)
                    ),
                    "serviceAccountName": pool.name,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": config.workers.termination_grace_seconds,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": _RUN_AS,
                        "runAsGroup": _RUN_AS,
                        "fsGroup": _RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(pool=pool, region=region, config=config)],
                    # The root filesystem is read-only; the worker still needs a scratch /tmp.
                    "volumes": [
                        {"name": _TMP, "emptyDir": {}},
                        {"name": _IMAGES, "emptyDir": {}},
                        *_redis_ca_volume(region.redis.ca),
                    ],
                },
            },
        },
    }


def _container(
    *, pool: _Pool, region: operatorconfig.Region, config: operatorconfig.OperatorConfig
) -> Manifest:
    pods = config.workers
    return {
        "name": "worker",
        "image": pods.image,
        "imagePullPolicy": pods.image_pull_policy,
        "args": list(pool.args),
        "env": _container_env(pool=pool, region=region, config=config),
        "ports": [{"name": _PORT, "containerPort": pods.port}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": _PORT}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": _PORT}},
        "resources": profile.resources(pool.profile),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": _TMP, "mountPath": "/tmp"},  # noqa: S108 (a mount in the pod)
            {"name": _IMAGES, "mountPath": IMAGES_PATH},
            *(
                [{"name": _REDIS_CA, "mountPath": REDIS_CA_DIR, "readOnly": True}]
                if region.redis.ca is not None
                else []
            ),
        ],
    }


def _container_env(
    *, pool: _Pool, region: operatorconfig.Region, config: operatorconfig.OperatorConfig
) -> list[Manifest]:
    env = [dict(variable) for variable in pool.env]
    env.extend(_redis_env(region.redis))
    providers = ",".join(provider.name for provider in pool.workers.providers)
    env.append(_env("IMAGEGEN_PROVIDERS", providers))
    env.append(_env("IMAGEGEN_CONCURRENCY", str(config.workers.concurrency)))
    env.extend(_store_env(region.storage))
    env.append(_env("IMAGEGEN_PORT", str(config.workers.port)))
    grace = max(1, config.workers.termination_grace_seconds - _GRACE_MARGIN_SECONDS)
    env.append(_env("IMAGEGEN_GRACE_SECONDS", str(grace)))
    return env


def _redis_env(redis: operatorconfig.RegionRedis) -> list[Manifest]:
    """The region's Redis settings, every one spelled out (a worker image of another
    version has other defaults), as the worker's IMAGEGEN_REDIS_* options."""
    env = [
        _env(redisconfig.variable(option), value)
        for option, value in redisconfig.to_options(redis).items()
    ]
    if redis.ca is not None:
        env.append(_env(redisconfig.variable("ca-file"), f"{REDIS_CA_DIR}/ca.crt"))
    secret = redis.password_secret
    if secret is not None:
        # A reference, never the value: the kubelet reads the Secret in the pod's own
        # namespace (a secretKeyRef has no namespace field).
        env.append(
            {
                "name": redisconfig.PASSWORD_VARIABLE,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        )
    return env


def _redis_ca_volume(ca: operatorconfig.CaBundleRef | None) -> list[Manifest]:
    """The CA bundle's Secret or ConfigMap of the workers namespace, its key as ca.crt."""
    if ca is None:
        return []
    items = [{"key": ca.key, "path": "ca.crt"}]
    if ca.secret is not None:
        return [{"name": _REDIS_CA, "secret": {"secretName": ca.secret, "items": items}}]
    return [{"name": _REDIS_CA, "configMap": {"name": ca.config_map, "items": items}}]


def _store_env(store: objectstore.ObjectStore) -> list[Manifest]:
    """The region's object store; an S3 store's keys as references to its Secret in the
    workers namespace, read by botocore from AWS_* (never in args, never a value here)."""
    if store.scheme == "file":
        # The pool's own volume: the default store, and the worker's scratch otherwise.
        return [_env("IMAGEGEN_STORAGE_DIR", IMAGES_PATH)]
    env = [
        _env("IMAGEGEN_STORAGE_DIR", IMAGES_PATH),
        _env("IMAGEGEN_STORE_URL", store.url),
        _env("IMAGEGEN_STORE_REGION", store.region),
        _env("IMAGEGEN_STORE_PATH_STYLE", "true" if store.path_style else "false"),
    ]
    if store.endpoint is not None:
        env.append(_env("IMAGEGEN_STORE_ENDPOINT", store.endpoint))
    if store.credentials_secret is not None:
        for variable, key in (
            ("AWS_ACCESS_KEY_ID", objectstore.ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", objectstore.SECRET_ACCESS_KEY),
        ):
            env.append(
                {
                    "name": variable,
                    "valueFrom": {"secretKeyRef": {"name": store.credentials_secret, "key": key}},
                }
            )
    return env


def _env(name: str, value: str) -> Manifest:
    return {"name": name, "value": value}


def _autoscaler(*, pool: _Pool, config: operatorconfig.OperatorConfig) -> Manifest:
    workers, rates = pool.workers, config.autoscaling
    target = workers.target_cpu_utilization_percentage
    # The band around the target, as DESIGN.md's scaling rule puts it: up/target - 1 and
    # 1 - down/target, written as differences over the target so the float division is
    # of small integers and rounds as the exact ratio does.
    up = (workers.scale_up_threshold_percent - target) / target
    down = (target - workers.scale_down_threshold_percent) / target
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(pool=pool, config=config),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": pool.name},
            "minReplicas": workers.min_replicas,
            "maxReplicas": workers.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": 15},
                        {
                            "type": "Pods",
                            "value": rates.scale_up_pods_per_15_seconds,
                            "periodSeconds": 15,
                        },
                    ],
                    "tolerance": quantity.tolerance_quantity(up),
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": _scale_down_window(pool=pool, config=config),
                    "policies": [
                        {
                            "type": "Percent",
                            "value": rates.scale_down_percent_per_minute,
                            "periodSeconds": 60,
                        }
                    ],
                    "tolerance": quantity.tolerance_quantity(down),
                },
            },
        },
    }


def _scale_down_window(*, pool: _Pool, config: operatorconfig.OperatorConfig) -> int:
    window = pool.workers.scale_down_stabilization_seconds
    return config.autoscaling.scale_down_stabilization_seconds if window is None else window


def _disruption_budget(*, pool: _Pool, config: operatorconfig.OperatorConfig) -> Manifest:
    # One worker at a time through a drain: its leased items go back to the queue, so a
    # slow drain costs latency, while many at once would cost the SLA.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(pool=pool, config=config),
        "spec": {"maxUnavailable": 1, "selector": _selector(pool)},
    }
