"""What the chart renders, with the real helm and no cluster: lint, the schema's refusals,
the operator config, restricted pods, and manifests/ in step with the chart."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from imagegen.api import operatorconfig
from imagegen.gateway import settings as settings_model
from imagegen.localcluster import helmchart
from tests.integration import helmtool
from tests.integration.helmtool import CHART, NAMESPACE, THREE_REGIONS, find

MANIFESTS = helmtool.REPO / "manifests"


@pytest.fixture(scope="module")
def helm(
    binaries: dict[str, pathlib.Path], tmp_path_factory: pytest.TempPathFactory
) -> helmtool.Helm:
    return helmtool.Helm(binary=binaries["helm"], home=tmp_path_factory.mktemp("helm-home"))


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


# manifests/ and the chart


def test_committed_manifests_are_what_the_chart_renders(helm: helmtool.Helm) -> None:
    rendered = helmchart.render_manifests(helm=helm.binary, chart=CHART)
    for relative, text in rendered.items():
        path = MANIFESTS / relative
        assert path.exists(), f"{path} is missing: run `make manifests`"
        assert path.read_text() == text, f"{path} drifted from the chart: run `make manifests`"


def test_the_rbac_the_tests_run_the_operator_under_is_the_charts(helm: helmtool.Helm) -> None:
    """manifests/rbac is what operatorsetup applies; it must be the chart's own rules."""
    chart_rules = {
        (o["kind"], o["metadata"]["name"]): o.get("rules")
        for o in helm.template("--set", "createNamespace=true")
        if o["kind"] in ("ClusterRole", "Role") and "operator" in o["metadata"]["name"]
    }
    committed = helmtool.load_objects(MANIFESTS / "rbac" / "management.yaml")
    committed += helmtool.load_objects(MANIFESTS / "rbac" / "region.yaml")
    committed_rules = {
        (o["kind"], o["metadata"]["name"]): o.get("rules")
        for o in committed
        if o["kind"] in ("ClusterRole", "Role")
    }
    assert committed_rules == chart_rules


# Lint and schema


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["-f", str(THREE_REGIONS)],
        ["--set", "mode=region"],
        ["--set", "argocd.healthChecks=true"],
    ],
    ids=["defaults", "three-regions", "region-mode", "argocd-health-checks"],
)
def test_helm_lint_is_clean(helm: helmtool.Helm, values: list[str]) -> None:
    out = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values)
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (["--set", "tenants.acme.tier=gold"], "/tenants/acme/tier"),
        (
            ["-f", str(THREE_REGIONS), "--set", "tenants.metaphysical.workers.maxReplicas=51"],
            "/tenants/metaphysical/workers/maxReplicas",
        ),
        (["--set", "config.sharedPool.maxReplicas=51"], "/config/sharedPool/maxReplicas"),
        (["--set", "gateway.replicas=0"], "/gateway/replicas"),
        (["--set", "mode=satellite"], "/mode"),
        (["--set", "regions=null"], "regions"),
        (["--set", "regions[0].redis.url=http://redis:6379"], "/regions/0/redis/url"),
        (
            ["--set", "regions[0].redis.ca.secret=a", "--set", "regions[0].redis.ca.configMap=b"],
            "/regions/0/redis/ca",
        ),
        (["--set", "gateway.redis.ca.configMap=Not_A_Name"], "/gateway/redis/ca"),
        (["--set-json", "gateway.redis.retry.attempts=11"], "/gateway/redis/retry/attempts"),
        (["--set", "operator.replicas=2"], "replicas"),
        (["--set", "config.driftCheckSeconds=0"], "/config/driftCheckSeconds"),
        (["--set-string", "argocd.healthChecks=yes"], "/argocd/healthChecks"),
        (["--set", "argocd.namespace=Argo_CD"], "/argocd/namespace"),
    ],
    ids=[
        "unknown-tier",
        "maxReplicas-51",
        "shared-pool-maxReplicas-51",
        "no-gateway-replicas",
        "unknown-mode",
        "no-regions",
        "redis-url-not-redis",
        "region-ca-from-two-places",
        "gateway-ca-not-a-name",
        "gateway-redis-retries-over-10",
        "operator-is-one-replica",
        "drift-check-zero",
        "argocd-health-checks-not-a-boolean",
        "argocd-namespace-not-a-dns-label",
    ],
)
def test_the_schema_refuses_bad_values_naming_the_field(
    helm: helmtool.Helm, values: list[str], field: str
) -> None:
    error = helm.refused(
        "template", helmtool.RELEASE, str(CHART), "--namespace", NAMESPACE, *values
    )
    assert "values don't meet the specifications of the schema" in error, error
    assert field in error, error


# The operator config


@pytest.mark.parametrize(
    "values", [[], ["-f", str(THREE_REGIONS)]], ids=["defaults", "three-regions"]
)
def test_the_rendered_operator_config_is_a_valid_operator_config(
    helm: helmtool.Helm, values: list[str]
) -> None:
    config = operatorconfig.OperatorConfig.model_validate(
        helmtool.operator_config(helm.template(*values))
    )
    assert config.operator_namespace == NAMESPACE
    assert config.workers.image == "ghcr.io/semantest/imagegen:0.1.0"


def test_three_regions_are_reached_through_kubeconfig_secrets(helm: helmtool.Helm) -> None:
    config = operatorconfig.OperatorConfig.model_validate(
        helmtool.operator_config(helm.template("-f", str(THREE_REGIONS)))
    )
    assert [region.name for region in config.regions] == ["us-east", "eu-west", "asia-pacific"]
    for region in config.regions:
        assert region.kubeconfig_secret is not None
        assert region.kubeconfig_secret.name == f"region-{region.name}-kubeconfig"
        assert region.redis.password_secret is not None
        assert region.redis.ca == operatorconfig.CaBundleRef(secret=f"region-{region.name}-redis")
    assert config.drift_check_seconds == 60


def test_the_worker_image_follows_the_chart_image_unless_set(helm: helmtool.Helm) -> None:
    objects = helm.template("--set", "image.tag=9.9.9")
    assert helmtool.operator_config(objects)["workers"]["image"].endswith(":9.9.9")
    operator = find(objects, "Deployment", "imagegen-operator")
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9")


def test_a_config_change_changes_the_operator_pod_template(helm: helmtool.Helm) -> None:
    """The operator reads its config once, so a new config must roll out a new pod."""

    def checksum(*values: str) -> str:
        operator = find(helm.template(*values), "Deployment", "imagegen-operator")
        annotations: dict[str, str] = operator["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/config"]

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "config.driftCheckSeconds=30")


# Pods, disruption, network


def test_every_pod_meets_restricted_pod_security(helm: helmtool.Helm) -> None:
    specs = dict(pod_specs(helm.template()))
    assert sorted(specs) == ["imagegen-gateway", "imagegen-operator", "imagegen-redis"]
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert {"requests", "limits"} <= container["resources"].keys(), name
            assert "livenessProbe" in container, name
            assert "readinessProbe" in container, name


def test_the_operator_is_one_replica_replaced_with_recreate(helm: helmtool.Helm) -> None:
    operator = find(helm.template(), "Deployment", "imagegen-operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    container = operator["spec"]["template"]["spec"]["containers"][0]
    # --log-format is a global flag of `imagegen`, so it comes before the command.
    assert container["args"][:3] == [
        "--log-format=text",
        "operator",
        "--config=/etc/imagegen/config.yaml",
    ]


def test_disruption_budgets_never_block_a_drain_of_the_single_operator(
    helm: helmtool.Helm,
) -> None:
    objects = helm.template()
    assert find(objects, "PodDisruptionBudget", "imagegen-operator")["spec"]["maxUnavailable"] == 1
    assert find(objects, "PodDisruptionBudget", "imagegen-gateway")["spec"]["minAvailable"] == 1


def test_every_pod_has_a_network_policy_and_the_rest_is_denied(helm: helmtool.Helm) -> None:
    objects = helm.template()
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert sorted(policies) == [
        "imagegen-default-deny",
        "imagegen-gateway",
        "imagegen-operator",
        "imagegen-redis",
    ]
    assert policies["imagegen-default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policies["imagegen-default-deny"]
    for name, _ in pod_specs(objects):
        selector = policies[name]["podSelector"]["matchLabels"]
        assert selector["app.kubernetes.io/component"] == name.removeprefix("imagegen-")
        assert policies[name]["policyTypes"] == ["Ingress", "Egress"]


def test_the_trial_redis_is_off_in_the_three_region_values(helm: helmtool.Helm) -> None:
    objects = helm.template("-f", str(THREE_REGIONS))
    assert not [o for o in objects if "redis" in o["metadata"]["name"]]
    gateway = find(objects, "Deployment", "imagegen-gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {
            "name": "IMAGEGEN_GATEWAY_REDIS_URL",
            "value": "rediss+cluster://redis-0.management.example.internal:6379,"
            "redis-1.management.example.internal:6379",
        }
    ]


def test_the_trial_redis_keeps_an_append_only_file_flushed_every_second(
    helm: helmtool.Helm,
) -> None:
    """What README promises of a Redis crash: at most the last second of writes."""
    redis = find(helm.template(), "Deployment", "imagegen-redis")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    settings = dict(zip(args[::2], args[1::2], strict=True))
    assert settings["--appendonly"] == "yes"
    assert settings["--appendfsync"] == "everysec"


def test_the_management_redis_password_and_ca_are_files_of_a_projected_volume(
    helm: helmtool.Helm,
) -> None:
    objects = helm.template(
        "--set", "gateway.redis.url=rediss://redis.management.internal:6380/0",
        "--set", "gateway.redis.passwordSecret.name=management-redis",
        "--set", "gateway.redis.passwordSecret.key=password",
        "--set", "gateway.redis.ca.configMap=management-redis-ca",
        "--set-json", "gateway.redis.commandTimeoutSeconds=1.5",
        "--set-json", 'gateway.redis.retry={"attempts": 5}',
    )  # fmt: skip
    settings = yaml.safe_load(
        find(objects, "ConfigMap", "imagegen-gateway-config")["data"]["settings.yaml"]
    )
    assert settings["redis"] == {
        "caFile": "/etc/imagegen/redis/ca.crt",
        "passwordFile": "/etc/imagegen/redis/password",
        "commandTimeoutSeconds": 1.5,
        "retry": {"attempts": 5},
    }
    pod = find(objects, "Deployment", "imagegen-gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "redis", "mountPath": "/etc/imagegen/redis", "readOnly": True} in container[
        "volumeMounts"
    ]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["redis"]["projected"]["sources"] == [
        {
            "secret": {
                "name": "management-redis",
                "items": [{"key": "password", "path": "password"}],
            }
        },
        {
            "configMap": {
                "name": "management-redis-ca",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            }
        },
    ]
    (url,) = container["env"]
    assert url == {
        "name": "IMAGEGEN_GATEWAY_REDIS_URL",
        "value": "rediss://redis.management.internal:6380/0",
    }
    # What the gateway makes of the file and its environment.
    gateway = settings_model.GatewaySettings.model_validate(
        {**settings, "redis": {**settings["redis"], "url": url["value"]}}
    )
    assert gateway.redis.command_timeout_seconds == 1.5


def test_a_redis_url_held_in_a_secret_reaches_the_gateway_only_by_reference(
    helm: helmtool.Helm,
) -> None:
    objects = helm.template(
        "--set", "gateway.redis.urlSecret.name=management-redis-url",
        "--set", "gateway.redis.urlSecret.key=url",
    )  # fmt: skip
    gateway = find(objects, "Deployment", "imagegen-gateway")
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {
            "name": "IMAGEGEN_GATEWAY_REDIS_URL",
            "valueFrom": {"secretKeyRef": {"name": "management-redis-url", "key": "url"}},
        }
    ]
    settings = find(objects, "ConfigMap", "imagegen-gateway-config")["data"]["settings.yaml"]
    assert "redis" not in yaml.safe_load(settings)


def test_the_gateway_settings_file_holds_what_the_chart_decides(helm: helmtool.Helm) -> None:
    objects = helm.template("-f", str(THREE_REGIONS), "--set", "gateway.settings.port=1")
    settings = yaml.safe_load(
        find(objects, "ConfigMap", "imagegen-gateway-config")["data"]["settings.yaml"]
    )
    assert {key: value for key, value in settings.items() if key != "redis"} == {
        "host": "0.0.0.0",  # noqa: S104 (a pod serves on every interface)
        "port": 8080,
        "operator_namespace": NAMESPACE,
        "webhook_allowlist": ["hooks.internal.example"],
        "image_delivery": "redirect",
        "stores": {
            "us-east": {
                "url": "s3://acme-imagegen-us-east/images",
                "region": "us-east-1",
                "credentialsSecret": "imagegen-store-us-east",
            },
            "eu-west": {
                "url": "s3://acme-imagegen-eu-west/images",
                "endpoint": "https://storage.googleapis.com",
                "region": "auto",
                "credentialsSecret": "imagegen-store-eu-west",
            },
            "asia-pacific": {
                "url": "s3://imagegen/images",
                "endpoint": "http://minio.storage.svc:9000",
                "pathStyle": True,
                "credentialsSecret": "imagegen-store-asia-pacific",
            },
        },
        "store_credentials_dir": "/etc/imagegen/stores",
    }
    gateway = find(objects, "Deployment", "imagegen-gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "--log-format=text",
        "gateway",
        "--config=/etc/imagegen/settings.yaml",
    ]
    # A Redis URL may carry a password: it is never in the settings file.
    assert settings.get("redis") == {
        "caFile": "/etc/imagegen/redis/ca.crt",
        "passwordFile": "/etc/imagegen/redis/password",
    }
    # Each region's store keys as files, from its Secret; never in env, args or settings.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    for region in ("us-east", "eu-west", "asia-pacific"):
        assert mounts[f"store-{region}"]["mountPath"] == f"/etc/imagegen/stores/{region}"
        assert volumes[f"store-{region}"]["secret"]["secretName"] == f"imagegen-store-{region}"
    assert "AWS_" not in yaml.safe_dump(container)


def test_the_gateway_uses_the_trial_redis_when_no_url_is_given(helm: helmtool.Helm) -> None:
    gateway = find(helm.template(), "Deployment", "imagegen-gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {
            "name": "IMAGEGEN_GATEWAY_REDIS_URL",
            "value": f"redis://imagegen-redis.{NAMESPACE}.svc:6379/0",
        }
    ]


def test_monitoring_objects_render_only_when_asked(helm: helmtool.Helm) -> None:
    kinds = {"ServiceMonitor", "PrometheusRule"}
    assert not [o for o in helm.template() if o["kind"] in kinds]
    enabled = helm.template(
        "--set", "monitoring.serviceMonitor.enabled=true",
        "--set", "monitoring.prometheusRule.enabled=true",
    )  # fmt: skip
    assert sorted(o["kind"] for o in enabled if o["kind"] in kinds) == sorted(kinds)


def test_region_mode_renders_only_what_a_regional_cluster_needs(helm: helmtool.Helm) -> None:
    objects = helm.template("--set", "mode=region")
    assert sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects) == [
        "ClusterRole/imagegen-operator-workers-namespace",
        "ClusterRoleBinding/imagegen-operator-workers-namespace",
        "Namespace/imagegen-workers",
        # The worker pods of the region name these (issue 19's preemption order).
        "PriorityClass/imagegen-premium",
        "PriorityClass/imagegen-standard",
        "Role/imagegen-operator",
        "RoleBinding/imagegen-operator",
        "ServiceAccount/imagegen-operator",
    ]


def test_tenants_in_values_become_tenant_objects(helm: helmtool.Helm) -> None:
    tenant = find(helm.template("-f", str(THREE_REGIONS)), "Tenant", "metaphysical")
    assert tenant["spec"]["tier"] == "priority"
    assert tenant["spec"]["regions"] == ["us-east", "eu-west", "asia-pacific"]
    assert tenant["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "1"}


def test_argocd_health_checks_are_rendered_from_the_lua_files_only_when_asked(
    helm: helmtool.Helm,
) -> None:
    assert not [o for o in helm.template() if o["metadata"]["name"] == "argocd-cm"]
    on = ["--set", "argocd.healthChecks=true"]
    assert not [
        o
        for o in helm.template("--set", "mode=region", *on)
        if o["metadata"]["name"] == "argocd-cm"
    ]
    config_map = find(
        helm.template(*on, "--set", "argocd.namespace=gitops"), "ConfigMap", "argocd-cm"
    )
    assert config_map["metadata"]["namespace"] == "gitops"
    assert config_map["metadata"]["labels"] == {"app.kubernetes.io/part-of": "argocd"}
    assert config_map["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    lua = helmtool.REPO / "gitops" / "health"
    assert config_map["data"] == {
        "resource.customizations.health.imagegen.semantest.io_Tenant": (
            lua / "tenant.lua"
        ).read_text(),
        "resource.customizations.health.imagegen.semantest.io_ImageBatch": (
            lua / "imagebatch.lua"
        ).read_text(),
    }
    # The same keys as the file to paste into argocd-cm by hand.
    pasted = yaml.safe_load((helmtool.REPO / "gitops" / "argocd-cm-health.yaml").read_text())
    assert config_map["data"] == pasted["data"]
