"""Worker pools rendered from a Tenant, a region and the operator config."""

from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from imagegen.api import objectstore, operatorconfig, podprofile, redisconfig, tenant
from imagegen.render import labels, output, pool, profile
from tests import builders

UID = "5f0c6d8e-2b1a-4c3d-9e8f-0a1b2c3d4e5f"
CONFIG = operatorconfig.local_default()

OWN_LABELS = {
    "app.kubernetes.io/managed-by": "imagegen-operator",
    "imagegen.semantest.io/tenant": "metaphysical",
    "imagegen.semantest.io/tenant-uid": UID,
    "app.kubernetes.io/name": "imagegen-worker",
    "app.kubernetes.io/component": "worker",
    "imagegen.semantest.io/region": "us-east",
    "imagegen.semantest.io/pool": "dedicated",
}
SELECTOR = {
    "imagegen.semantest.io/tenant": "metaphysical",
    "imagegen.semantest.io/pool": "dedicated",
    "imagegen.semantest.io/region": "us-east",
}
PROFILE = podprofile.PROFILE_ANNOTATION
# The default profile: the config's requests and limits, nothing else.
DEFAULT_DIGEST = profile.digest(profile.resolve(workers=tenant.Workers(), config=CONFIG))
METADATA = {"name": "worker-metaphysical", "namespace": "imagegen-workers", "labels": OWN_LABELS}
# Every setting of the region's Redis, spelled out: a worker image of another version may
# have other defaults.
REDIS_ENV = [
    {"name": "IMAGEGEN_REDIS_URL", "value": "redis://127.0.0.1:6379/0"},
    {"name": "IMAGEGEN_REDIS_CONNECT_TIMEOUT_SECONDS", "value": "3.0"},
    {"name": "IMAGEGEN_REDIS_COMMAND_TIMEOUT_SECONDS", "value": "5.0"},
    {"name": "IMAGEGEN_REDIS_RETRY_ATTEMPTS", "value": "3"},
    {"name": "IMAGEGEN_REDIS_RETRY_BACKOFF_BASE_SECONDS", "value": "0.05"},
    {"name": "IMAGEGEN_REDIS_RETRY_BACKOFF_CAP_SECONDS", "value": "1.0"},
]


def metaphysical() -> builders.TenantBuilder:
    """The premium partner of examples/, as the apiserver returns it (with a uid)."""
    return (
        builders.make_tenant("metaphysical")
        .uid(UID)
        .tier("priority")
        .regions("us-east", "eu-west", "asia-pacific")
        .workers(pool="dedicated", min_replicas=3, max_replicas=50)
    )


def by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {manifest["kind"]: manifest for manifest in manifests}


def render(
    builder: builders.TenantBuilder, *, config: operatorconfig.OperatorConfig = CONFIG
) -> dict[str, dict[str, Any]]:
    return by_kind(pool.tenant_pool(tenant=builder.model(), region="us-east", config=config))


def config_with(**fields: Any) -> operatorconfig.OperatorConfig:
    """The local stack's config with some top-level fields replaced, validated again."""
    document = CONFIG.model_dump(mode="json")
    document.update(fields)
    return operatorconfig.OperatorConfig.model_validate(document)


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every value of a manifest tree with its path, containers included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


# A dedicated tenant's pool


def test_dedicated_pool_is_namespace_account_deployment_autoscaler_budget_in_apply_order() -> None:
    manifests = pool.tenant_pool(tenant=metaphysical().model(), region="us-east", config=CONFIG)

    assert [(m["apiVersion"], m["kind"], m["metadata"]["name"]) for m in manifests] == [
        ("v1", "Namespace", "imagegen-workers"),
        ("v1", "ServiceAccount", "worker-metaphysical"),
        ("apps/v1", "Deployment", "worker-metaphysical"),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "worker-metaphysical"),
        ("policy/v1", "PodDisruptionBudget", "worker-metaphysical"),
    ]


def test_workers_namespace_is_restricted_and_belongs_to_no_tenant() -> None:
    assert render(metaphysical())["Namespace"] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "imagegen-workers",
            "labels": {
                "app.kubernetes.io/managed-by": "imagegen-operator",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def test_service_account_mounts_no_token() -> None:
    assert render(metaphysical())["ServiceAccount"] == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": METADATA,
        "automountServiceAccountToken": False,
    }


def test_deployment_of_a_priority_tenant_in_us_east() -> None:
    assert render(metaphysical())["Deployment"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": METADATA,
        "spec": {
            "selector": {"matchLabels": SELECTOR},
            "template": {
                "metadata": {"labels": OWN_LABELS, "annotations": {PROFILE: DEFAULT_DIGEST}},
                "spec": {
                    "serviceAccountName": "worker-metaphysical",
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "worker",
                            "image": "ghcr.io/semantest/imagegen:0.1.0",
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["worker", "--region", "us-east", "--tenant", "metaphysical"],
                            "env": [
                                {"name": "IMAGEGEN_TENANT", "value": "metaphysical"},
                                {"name": "IMAGEGEN_REGION", "value": "us-east"},
                                {"name": "IMAGEGEN_TIER", "value": "priority"},
                                *REDIS_ENV,
                                {"name": "IMAGEGEN_PROVIDERS", "value": "local"},
                                {"name": "IMAGEGEN_CONCURRENCY", "value": "4"},
                                {
                                    "name": "IMAGEGEN_STORAGE_DIR",
                                    "value": "/var/lib/imagegen/images",
                                },
                                {"name": "IMAGEGEN_PORT", "value": "8080"},
                                {"name": "IMAGEGEN_GRACE_SECONDS", "value": "45"},
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "tmp", "mountPath": "/tmp"},
                                {"name": "images", "mountPath": "/var/lib/imagegen/images"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "images", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def test_autoscaler_of_a_priority_tenant_in_us_east() -> None:
    assert render(metaphysical())["HorizontalPodAutoscaler"] == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": METADATA,
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "worker-metaphysical",
            },
            "minReplicas": 3,
            "maxReplicas": 50,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Percent", "value": 100, "periodSeconds": 15},
                        {"type": "Pods", "value": 8, "periodSeconds": 15},
                    ],
                    "tolerance": "143m",
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 20, "periodSeconds": 60}],
                    "tolerance": "571m",
                },
            },
        },
    }


def test_disruption_budget_lets_one_worker_go_at_a_time() -> None:
    assert render(metaphysical())["PodDisruptionBudget"] == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": METADATA,
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}},
    }


# Scaling follows the Tenant and the config


def test_changed_replica_bounds_show_up_in_the_autoscaler() -> None:
    spec = render(metaphysical().workers(min_replicas=5, max_replicas=20))[
        "HorizontalPodAutoscaler"
    ]["spec"]

    assert (spec["minReplicas"], spec["maxReplicas"]) == (5, 20)


def test_changed_thresholds_show_up_as_target_and_tolerances() -> None:
    workers = {
        "target_cpu_utilization_percentage": 60,
        "scale_up_threshold_percent": 90,
        "scale_down_threshold_percent": 20,
    }
    spec = render(metaphysical().workers(**workers))["HorizontalPodAutoscaler"]["spec"]

    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert spec["behavior"]["scaleUp"]["tolerance"] == "500m"
    assert spec["behavior"]["scaleDown"]["tolerance"] == "667m"


def test_scaling_rates_come_from_the_operator_config() -> None:
    config = config_with(
        autoscaling={
            "scaleDownStabilizationSeconds": 120,
            "scaleDownPercentPerMinute": 50,
            "scaleUpPodsPer15Seconds": 4,
        }
    )
    behavior = render(metaphysical(), config=config)["HorizontalPodAutoscaler"]["spec"]["behavior"]

    assert behavior["scaleUp"]["policies"][1] == {"type": "Pods", "value": 4, "periodSeconds": 15}
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 120
    assert behavior["scaleDown"]["policies"] == [
        {"type": "Percent", "value": 50, "periodSeconds": 60}
    ]


def test_a_tenant_may_set_its_own_scale_down_window_over_the_operators() -> None:
    config = config_with(autoscaling={"scaleDownStabilizationSeconds": 120})
    tenant_window = metaphysical().workers(scale_down_stabilization_seconds=45)

    own = render(tenant_window, config=config)["HorizontalPodAutoscaler"]["spec"]["behavior"]
    default = render(metaphysical(), config=config)["HorizontalPodAutoscaler"]["spec"]["behavior"]

    assert own["scaleDown"]["stabilizationWindowSeconds"] == 45
    assert default["scaleDown"]["stabilizationWindowSeconds"] == 120


def test_deployment_has_no_replicas_because_the_autoscaler_owns_them() -> None:
    assert "replicas" not in render(metaphysical())["Deployment"]["spec"]


# Worker pods


def test_pods_meet_restricted_pod_security() -> None:
    pod = render(metaphysical())["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["automountServiceAccountToken"] is False


def test_pod_template_comes_from_the_operator_config_with_canonical_quantities() -> None:
    config = config_with(
        workers={
            "image": "registry.example/imagegen:2.0.0",
            "imagePullPolicy": "Always",
            "cpuRequest": "0.25",
            "cpuLimit": "2000m",
            "memoryRequest": "0.5Gi",
            "memoryLimit": "1024Mi",
            "concurrency": 8,
            "port": 9090,
            "terminationGraceSeconds": 120,
        }
    )
    pod = render(metaphysical(), config=config)["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert (container["image"], container["imagePullPolicy"]) == (
        "registry.example/imagegen:2.0.0",
        "Always",
    )
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }
    assert container["ports"] == [{"name": "http", "containerPort": 9090}]
    assert {"name": "IMAGEGEN_CONCURRENCY", "value": "8"} in container["env"]
    assert pod["terminationGracePeriodSeconds"] == 120


def test_providers_are_passed_comma_joined_in_order() -> None:
    env = render(metaphysical().providers("local", "sdxl", "dalle"))["Deployment"]["spec"][
        "template"
    ]["spec"]["containers"][0]["env"]

    assert {"name": "IMAGEGEN_PROVIDERS", "value": "local,sdxl,dalle"} in env


def test_redis_password_comes_only_from_a_secret_reference() -> None:
    regions = CONFIG.model_dump(mode="json")["regions"]
    regions[0]["redis"]["passwordSecret"] = {"name": "redis-auth", "key": "password"}
    env = render(metaphysical(), config=config_with(regions=regions))["Deployment"]["spec"][
        "template"
    ]["spec"]["containers"][0]["env"]

    passwords = [variable for variable in env if variable["name"] == "IMAGEGEN_REDIS_PASSWORD"]
    assert passwords == [
        {
            "name": "IMAGEGEN_REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "password"}},
        }
    ]


def test_no_redis_password_variable_without_a_password_secret() -> None:
    env = render(metaphysical())["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]

    assert "IMAGEGEN_REDIS_PASSWORD" not in {variable["name"] for variable in env}


@pytest.mark.parametrize(
    ("ca", "source"),
    [
        (
            {"secret": "redis-tls", "key": "tls-ca.pem"},
            {
                "secret": {
                    "secretName": "redis-tls",
                    "items": [{"key": "tls-ca.pem", "path": "ca.crt"}],
                }
            },
        ),
        (
            {"configMap": "redis-ca"},
            {"configMap": {"name": "redis-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        ),
    ],
    ids=["secret", "config-map"],
)
def test_a_private_redis_ca_is_mounted_and_named_to_the_worker(
    ca: dict[str, str], source: dict[str, Any]
) -> None:
    regions = CONFIG.model_dump(mode="json")["regions"]
    regions[0]["redis"] = {
        "url": "rediss+cluster://redis-0.us-east:6380,redis-1.us-east:6380",
        "ca": ca,
        "commandTimeoutSeconds": 7,
        "retry": {"attempts": 5},
    }
    pod = render(metaphysical(), config=config_with(regions=regions))["Deployment"]["spec"][
        "template"
    ]["spec"]
    container = pod["containers"][0]
    redis_env = {v["name"]: v["value"] for v in container["env"] if "REDIS" in v["name"]}

    assert redis_env == {
        "IMAGEGEN_REDIS_URL": "rediss+cluster://redis-0.us-east:6380,redis-1.us-east:6380",
        "IMAGEGEN_REDIS_CONNECT_TIMEOUT_SECONDS": "3.0",
        "IMAGEGEN_REDIS_COMMAND_TIMEOUT_SECONDS": "7.0",
        "IMAGEGEN_REDIS_RETRY_ATTEMPTS": "5",
        "IMAGEGEN_REDIS_RETRY_BACKOFF_BASE_SECONDS": "0.05",
        "IMAGEGEN_REDIS_RETRY_BACKOFF_CAP_SECONDS": "1.0",
        "IMAGEGEN_REDIS_CA_FILE": "/etc/imagegen/redis-ca/ca.crt",
    }
    assert {"name": "redis-ca", **source} in pod["volumes"]
    assert {
        "name": "redis-ca",
        "mountPath": "/etc/imagegen/redis-ca",
        "readOnly": True,
    } in container["volumeMounts"]


def test_the_rendered_redis_variables_are_what_the_worker_reads() -> None:
    """The Deployment's env, read back as the worker's flags read it, is the region's Redis."""
    regions = CONFIG.model_dump(mode="json")["regions"]
    regions[0]["redis"] = {"url": "rediss://redis.us-east:6380/2", "ca": {"secret": "ca"}}
    config = config_with(regions=regions)
    env = render(metaphysical(), config=config)["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    variables = {v["name"]: v["value"] for v in env if "value" in v}

    read = redisconfig.from_options(
        {option: variables.get(redisconfig.variable(option)) for option in redisconfig.OPTIONS}
    )

    assert redisconfig.RedisSettings.model_validate(
        read.model_dump(include=set(redisconfig.RedisSettings.model_fields))
    ) == redisconfig.RedisSettings.model_validate(
        config.regions[0].redis.model_dump(include=set(redisconfig.RedisSettings.model_fields))
    )
    assert str(read.ca_file) == "/etc/imagegen/redis-ca/ca.crt"


# Labels


def test_deployment_selector_leaves_out_the_uid_and_the_tier() -> None:
    deployment = render(metaphysical())["Deployment"]

    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    assert labels.TENANT_UID in deployment["spec"]["template"]["metadata"]["labels"]


def test_tenant_without_a_uid_renders_without_the_uid_label() -> None:
    manifests = pool.tenant_pool(
        tenant=builders.make_tenant("metaphysical").model(), region="us-east", config=CONFIG
    )

    assert all(labels.TENANT_UID not in manifest["metadata"]["labels"] for manifest in manifests)


def test_owned_by_selects_by_uid_and_refuses_a_tenant_without_one() -> None:
    assert labels.owned_by(tenant=metaphysical().model()) == {
        "app.kubernetes.io/managed-by": "imagegen-operator",
        "imagegen.semantest.io/tenant-uid": UID,
    }
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        labels.owned_by(tenant=builders.make_tenant("metaphysical").model())


def test_every_owned_object_in_the_workers_namespace_matches_owned_by() -> None:
    owned = labels.owned_by(tenant=metaphysical().model())
    manifests = pool.tenant_pool(tenant=metaphysical().model(), region="us-east", config=CONFIG)

    for manifest in manifests[1:]:
        assert owned.items() <= manifest["metadata"]["labels"].items()


# Shared pools


def test_shared_tenant_renders_only_the_workers_namespace() -> None:
    tenant = builders.make_tenant("acme").uid(UID).workers(pool="shared").model()

    manifests = pool.tenant_pool(tenant=tenant, region="us-east", config=CONFIG)

    assert [manifest["kind"] for manifest in manifests] == ["Namespace"]


def test_shared_pool_is_sized_by_the_config_and_belongs_to_no_tenant() -> None:
    config = config_with(
        sharedPool={
            "pool": "shared",
            "minReplicas": 2,
            "maxReplicas": 12,
            "providers": [{"name": "local"}, {"name": "sdxl"}],
        }
    )
    objects = by_kind(pool.shared_pool(region="eu-west", config=config))

    assert [manifest["metadata"]["name"] for manifest in objects.values()] == [
        "imagegen-workers",
        *["worker-shared"] * 4,
    ]
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 12)
    assert objects["Deployment"]["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "imagegen-operator",
        "app.kubernetes.io/name": "imagegen-worker",
        "app.kubernetes.io/component": "worker",
        "imagegen.semantest.io/region": "eu-west",
        "imagegen.semantest.io/pool": "shared",
    }
    assert objects["Deployment"]["spec"]["selector"]["matchLabels"] == {
        "imagegen.semantest.io/pool": "shared",
        "imagegen.semantest.io/region": "eu-west",
    }
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["worker", "--region", "eu-west", "--pool", "shared"]
    assert [variable["name"] for variable in container["env"]] == [
        "IMAGEGEN_REGION",
        *[variable["name"] for variable in REDIS_ENV],
        "IMAGEGEN_PROVIDERS",
        "IMAGEGEN_CONCURRENCY",
        "IMAGEGEN_STORAGE_DIR",
        "IMAGEGEN_PORT",
        "IMAGEGEN_GRACE_SECONDS",
    ]
    assert {"name": "IMAGEGEN_PROVIDERS", "value": "local,sdxl"} in container["env"]


def test_a_tenant_named_shared_cannot_exist_so_no_pool_takes_the_shared_pools_name() -> None:
    with pytest.raises(pydantic.ValidationError, match="must not be 'shared'"):
        builders.make_tenant("shared").uid(UID).model()


# Regions


def test_unknown_region_is_refused_naming_the_known_ones() -> None:
    message = "unknown region 'moon'; the operator config knows: us-east, eu-west, asia-pacific"

    with pytest.raises(pool.UnknownRegionError, match=message):
        pool.tenant_pool(tenant=metaphysical().model(), region="moon", config=CONFIG)
    with pytest.raises(pool.UnknownRegionError, match=message):
        pool.shared_pool(region="moon", config=CONFIG)


def test_each_region_gets_its_own_redis_and_region_labels() -> None:
    regions = CONFIG.model_dump(mode="json")["regions"]
    regions[1]["redis"]["url"] = "redis://redis.eu-west:6379/0"
    manifests = pool.tenant_pool(
        tenant=metaphysical().model(), region="eu-west", config=config_with(regions=regions)
    )
    deployment = by_kind(manifests)["Deployment"]

    assert deployment["metadata"]["labels"][labels.REGION] == "eu-west"
    assert {"name": "IMAGEGEN_REDIS_URL", "value": "redis://redis.eu-west:6379/0"} in deployment[
        "spec"
    ]["template"]["spec"]["containers"][0]["env"]


# What the apiserver reads back


@pytest.mark.parametrize("pool_kind", ["dedicated", "shared pool"])
def test_no_value_is_none_and_no_list_is_empty(pool_kind: str) -> None:
    manifests = (
        pool.tenant_pool(tenant=metaphysical().model(), region="us-east", config=CONFIG)
        if pool_kind == "dedicated"
        else pool.shared_pool(region="us-east", config=CONFIG)
    )

    for path, value in walk(manifests):
        assert value is not None, path
        assert value != [], path


def test_render_is_deterministic() -> None:
    first = pool.tenant_pool(tenant=metaphysical().model(), region="us-east", config=CONFIG)
    second = pool.tenant_pool(tenant=metaphysical().model(), region="us-east", config=CONFIG)

    assert first == second
    assert output.to_yaml(first) == output.to_yaml(second)


def test_no_two_fields_share_one_object() -> None:
    manifests = pool.tenant_pool(tenant=metaphysical().model(), region="us-east", config=CONFIG)
    containers = [value for _, value in walk(manifests) if isinstance(value, dict | list)]

    assert len({id(container) for container in containers}) == len(containers)


def test_an_s3_store_reaches_workers_as_settings_and_secret_references_only() -> None:
    config = CONFIG.model_copy(deep=True)
    config.regions[0].storage = objectstore.ObjectStore(
        url="s3://imagegen-us/images",
        endpoint="https://minio.store:9000",
        path_style=True,
        credentials_secret="imagegen-store",
    )
    objects = {
        obj["kind"]: obj
        for obj in pool.tenant_pool(tenant=metaphysical().model(), region="us-east", config=config)
    }
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["IMAGEGEN_STORE_URL"]["value"] == "s3://imagegen-us/images"
    assert env["IMAGEGEN_STORE_ENDPOINT"]["value"] == "https://minio.store:9000"
    assert env["IMAGEGEN_STORE_PATH_STYLE"]["value"] == "true"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "name": "AWS_ACCESS_KEY_ID",
        "valueFrom": {"secretKeyRef": {"name": "imagegen-store", "key": "accessKeyId"}},
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "imagegen-store",
        "key": "secretAccessKey",
    }
    assert not any("--store" in arg for arg in container["args"])
