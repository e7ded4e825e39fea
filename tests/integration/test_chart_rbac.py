"""RBAC proven with the chart's own ServiceAccounts: the chart's RBAC and operator config are
rendered by helm and applied to the management cluster, a TokenRequest gives the operator
a token of the chart's ServiceAccount and nothing else, and with that token alone the
operator turns a Tenant into pools in every region, reading the regions' kubeconfigs from
the Secrets the chart's config names. The same tokens are then refused what neither the
operator nor the gateway may do."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import lightkube
import pytest
import yaml
from lightkube import codecs
from lightkube.models import authorization_v1 as authz_models
from lightkube.models import meta_v1, rbac_v1
from lightkube.resources import apps_v1, authorization_v1, core_v1, rbac_authorization_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.kube import clients
from imagegen.localcluster import operatorsetup, redis, stack
from tests.integration import apiobjects, helmtool, operatorproc, tenantworld, waiting
from tests.integration.conftest import DRIFT_CHECK_SECONDS, FAILOVER_AFTER_SECONDS
from tests.integration.tenantworld import World, new_tenant, unique_name

NAMESPACE = operatorsetup.NAMESPACE
GATEWAY_USER = f"system:serviceaccount:{NAMESPACE}:imagegen-gateway"
# What the chart installs that decides privileges; its Deployments would only wait for a
# kubelet here, so they are not applied to the shared management cluster.
RBAC_KINDS = {
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
TENANT_SECRETS = "imagegen-operator-tenant-secrets"


def kubeconfig_secret(region: str) -> str:
    return f"region-{region}-kubeconfig"


@pytest.fixture(scope="module")
def chart_objects(
    binaries: dict[str, pathlib.Path],
    region_redis: dict[str, redis.LocalRedis],
    tmp_path_factory: pytest.TempPathFactory,
) -> list[dict[str, Any]]:
    """The chart rendered for the local stack's three regions, as a platform team would
    write its values: kubeconfigs in Secrets, each region's own Redis."""
    values = {
        "regions": [
            {
                "name": name,
                "kubeconfigSecret": {"name": kubeconfig_secret(name), "key": "kubeconfig"},
                "redis": {"url": server.url},
            }
            for name, server in region_redis.items()
        ],
        "config": {
            "driftCheckSeconds": DRIFT_CHECK_SECONDS,
            "failoverAfterSeconds": FAILOVER_AFTER_SECONDS,
        },
        "redis": {"bundled": {"enabled": False}},
        "gateway": {"redis": {"url": region_redis["us-east"].url}},
    }
    home = tmp_path_factory.mktemp("helm-home")
    values_file = home / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    helm = helmtool.Helm(binary=binaries["helm"], home=home)
    return helm.template("-f", str(values_file))


@pytest.fixture(scope="module")
def chart_installed(
    kube: lightkube.Client,
    operator_setup: operatorsetup.OperatorSetup,
    chart_objects: list[dict[str, Any]],
) -> Iterator[None]:
    """The chart's RBAC applied over what operator_setup installed (the same rules, as
    manifests/rbac is rendered from the chart), plus the regions' kubeconfig Secrets."""
    for obj in chart_objects:
        if obj["kind"] in RBAC_KINDS:
            kube.apply(codecs.from_dict(obj), field_manager="helm-chart-test", force=True)
    for name, path in operator_setup.region_kubeconfigs.items():
        kube.apply(
            core_v1.Secret(
                metadata=meta_v1.ObjectMeta(name=kubeconfig_secret(name), namespace=NAMESPACE),
                stringData={"kubeconfig": path.read_text()},
            ),
            field_manager="helm-chart-test",
        )
    yield
    for name in operator_setup.region_kubeconfigs:
        kube.delete(core_v1.Secret, kubeconfig_secret(name), namespace=NAMESPACE)


@pytest.fixture(scope="module")
def chart_setup(
    chart_installed: None,
    chart_objects: list[dict[str, Any]],
    local_stack: stack.LocalStack,
    operator_setup: operatorsetup.OperatorSetup,
    tmp_path_factory: pytest.TempPathFactory,
) -> operatorsetup.OperatorSetup:
    """The operator's kubeconfig with a token of the chart's ServiceAccount, and the config
    file exactly as the chart's ConfigMap holds it."""
    workdir = tmp_path_factory.mktemp("chart-operator")
    config_path = workdir / "config.yaml"
    config_path.write_text(
        helmtool.find(chart_objects, "ConfigMap", "imagegen-operator-config")["data"]["config.yaml"]
    )
    kubeconfig = operatorsetup.token_kubeconfig(
        target=local_stack.management, path=workdir / "operator.kubeconfig"
    )
    return operatorsetup.OperatorSetup(
        kubeconfig=kubeconfig,
        config_path=config_path,
        region_kubeconfigs=operator_setup.region_kubeconfigs,
    )


@pytest.fixture(scope="module")
def operator_token(chart_setup: operatorsetup.OperatorSetup) -> Iterator[lightkube.Client]:
    with clients.sync_client(kubeconfig=chart_setup.kubeconfig) as client:
        yield client


@pytest.fixture(scope="module")
def gateway_token(
    chart_installed: None, local_stack: stack.LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[lightkube.Client]:
    path = operatorsetup.token_kubeconfig(
        target=local_stack.management,
        path=tmp_path_factory.mktemp("chart-gateway") / "gateway.kubeconfig",
        account="imagegen-gateway",
    )
    with clients.sync_client(kubeconfig=path) as client:
        yield client


@pytest.fixture(scope="module")
def region_token(operator_setup: operatorsetup.OperatorSetup) -> Iterator[lightkube.Client]:
    """The regional identity the chart's config reaches us-east with (region mode's SA)."""
    path = operator_setup.region_kubeconfigs["us-east"]
    with clients.sync_client(kubeconfig=path) as client:
        yield client


def refusals(events: list[dict[str, Any]], user: str) -> list[str]:
    return [
        f"{e['verb']} {e.get('objectRef', {}).get('resource')}"
        for e in events
        if e["user"].get("username") == user and e.get("responseStatus", {}).get("code") == 403
    ]


def test_the_operator_runs_a_tenant_with_only_the_charts_serviceaccount_token(
    chart_setup: operatorsetup.OperatorSetup,
    running_operator: operatorproc.OperatorProcess,
    local_stack: stack.LocalStack,
    kube: lightkube.Client,
    tmp_path: pathlib.Path,
) -> None:
    world = World(kube=kube, regions=local_stack.regions)
    clusters = local_stack.all_clusters()
    refused_before = {
        c.name: len(refusals(c.audit_events(), tenantworld.OPERATOR_USER)) for c in clusters
    }
    # One operator at a time: the session's operator stands aside for the chart's.
    running_operator.stop()
    chart_operator = operatorproc.OperatorProcess(
        setup=chart_setup, log_path=tmp_path / "chart-operator.log"
    )
    try:
        chart_operator.start()
        name = unique_name("chart")
        created = world.create(new_tenant(name).obj())
        world.wait_reconciled(name, timeout=120)
        for region in local_stack.regions:
            assert world.pool_objects(region, created["metadata"]["uid"]) == [
                f"Deployment/worker-{name}",
                f"HorizontalPodAutoscaler/worker-{name}",
                f"PodDisruptionBudget/worker-{name}",
                f"ServiceAccount/worker-{name}",
            ], region
        namespace = created["spec"]["namespace"]
        # Its Secret access came from a binding of its own in the tenant's namespace.
        binding = kube.get(rbac_authorization_v1.RoleBinding, TENANT_SECRETS, namespace=namespace)
        assert binding.roleRef.name == TENANT_SECRETS
        assert [(s.kind, s.namespace, s.name) for s in binding.subjects or []] == [
            ("ServiceAccount", NAMESPACE, "imagegen-operator")
        ]
        kube.get(core_v1.Secret, f"{name}-api-key", namespace=namespace)
        apiobjects.delete_and_wait(
            kube, resources.Tenant, name, what=f"{name} deleted through its finalizer"
        )
        for region in local_stack.regions:
            assert world.pool_objects(region, created["metadata"]["uid"]) == [], region
        # The namespace stays (it may hold the tenant's own things); the operator's key
        # Secret and its access to the namespace's Secrets do not.
        assert apiobjects.absent(kube, core_v1.Secret, f"{name}-api-key", namespace)
        assert apiobjects.absent(kube, rbac_authorization_v1.RoleBinding, TENANT_SECRETS, namespace)
        assert "Traceback" not in chart_operator.log(), chart_operator.log()[-4000:]
    finally:
        chart_operator.stop()
        running_operator.start()
    refused_after = {
        c.name: len(refusals(c.audit_events(), tenantworld.OPERATOR_USER)) for c in clusters
    }
    assert refused_after == refused_before, "the chart's operator was refused a request it made"


# Refused with the operator's token


def refused(attempt: Callable[[], object]) -> None:
    """The apiserver answers the attempt with 403 Forbidden."""
    with pytest.raises(lightkube.ApiError) as raised:
        attempt()
    assert raised.value.status.code == 403, raised.value.status


def allowed(client: lightkube.Client, **attributes: str) -> bool:
    """What a SelfSubjectAccessReview of these resource attributes says."""
    review = client.create(
        authorization_v1.SelfSubjectAccessReview(
            spec=authz_models.SelfSubjectAccessReviewSpec(
                resourceAttributes=authz_models.ResourceAttributes(**attributes)
            )
        )
    )
    assert review.status is not None
    return review.status.allowed


def cluster_role(name: str) -> rbac_authorization_v1.ClusterRole:
    return rbac_authorization_v1.ClusterRole(
        metadata=meta_v1.ObjectMeta(name=name),
        rules=[rbac_v1.PolicyRule(apiGroups=["*"], resources=["*"], verbs=["*"])],
    )


def role_binding(
    *, namespace: str, role: str = TENANT_SECRETS, account: str = "imagegen-operator"
) -> rbac_authorization_v1.RoleBinding:
    return rbac_authorization_v1.RoleBinding(
        metadata=meta_v1.ObjectMeta(name=unique_name("forged"), namespace=namespace),
        roleRef=rbac_v1.RoleRef(
            apiGroup="rbac.authorization.k8s.io", kind="ClusterRole", name=role
        ),
        subjects=[rbac_v1.Subject(kind="ServiceAccount", name=account, namespace=NAMESPACE)],
    )


@pytest.fixture(scope="module")
def tenant_namespace(kube: lightkube.Client) -> Iterator[str]:
    """A namespace handed to a tenant (labelled): where the operator may bind itself."""
    name = unique_name("tenant-ns")
    kube.create(
        core_v1.Namespace(
            metadata=meta_v1.ObjectMeta(
                name=name, labels={"imagegen.semantest.io/tenant": "somebody"}
            )
        )
    )
    yield name
    kube.delete(core_v1.Namespace, name)


def config_map(namespace: str) -> core_v1.ConfigMap:
    return core_v1.ConfigMap(
        metadata=meta_v1.ObjectMeta(name="not-yours", namespace=namespace), data={"a": "b"}
    )


OPERATOR_REFUSED: dict[str, Callable[[lightkube.Client], object]] = {
    "read a Secret by name in kube-system": lambda c: c.get(
        core_v1.Secret, "any", namespace="kube-system"
    ),
    "read a Secret by name in default": lambda c: c.get(core_v1.Secret, "any", namespace="default"),
    "create a Secret in default": lambda c: c.create(
        core_v1.Secret(metadata=meta_v1.ObjectMeta(name="not-yours", namespace="default"))
    ),
    "bind cluster-admin to itself in kube-system": lambda c: c.create(
        role_binding(namespace="kube-system", role="cluster-admin")
    ),
    "list Secrets in kube-system": lambda c: list(c.list(core_v1.Secret, namespace="kube-system")),
    "list Secrets in every namespace": lambda c: list(c.list(core_v1.Secret, namespace="*")),
    "create a ConfigMap in default": lambda c: c.create(config_map("default")),
    "delete the default namespace": lambda c: c.delete(core_v1.Namespace, "default"),
    "patch kube-system's labels": lambda c: c.patch(
        core_v1.Namespace,
        "kube-system",
        {"metadata": {"labels": {"a": "b"}}},
        patch_type=PatchType.MERGE,
    ),
    "list Deployments in kube-system": lambda c: list(
        c.list(apps_v1.Deployment, namespace="kube-system")
    ),
    "create a ClusterRole": lambda c: c.create(cluster_role("escalate")),
    "create a Tenant (only the platform team does)": lambda c: c.create(
        codecs.from_dict(new_tenant(unique_name("forged")).obj())
    ),
    "delete a Tenant": lambda c: c.delete(resources.Tenant, "anything"),
}


@pytest.mark.parametrize("what", sorted(OPERATOR_REFUSED))
def test_the_operator_token_is_refused(operator_token: lightkube.Client, what: str) -> None:
    refused(lambda: OPERATOR_REFUSED[what](operator_token))


def test_the_operator_cannot_bind_itself_to_secrets_outside_tenant_namespaces(
    operator_token: lightkube.Client,
) -> None:
    with pytest.raises(lightkube.ApiError) as raised:
        operator_token.create(role_binding(namespace="kube-system"))
    assert raised.value.status.code == 403
    assert "only in tenant namespaces" in str(raised.value.status.message)
    assert not allowed(operator_token, verb="get", resource="secrets", namespace="kube-system")


def test_in_a_tenant_namespace_the_operator_may_bind_only_its_secret_role_only_to_itself(
    operator_token: lightkube.Client, tenant_namespace: str
) -> None:
    for forged, why in (
        (role_binding(namespace=tenant_namespace, role="cluster-admin"), "cluster-admin"),
        (role_binding(namespace=tenant_namespace, role="edit"), "edit"),
        (role_binding(namespace=tenant_namespace, account="default"), "its own ServiceAccount"),
    ):
        with pytest.raises(lightkube.ApiError) as raised:
            operator_token.create(forged)
        assert raised.value.status.code == 403, why
    assert not allowed(operator_token, verb="get", resource="secrets", namespace=tenant_namespace)
    operator_token.create(role_binding(namespace=tenant_namespace))

    def honoured() -> bool:
        return allowed(operator_token, verb="get", resource="secrets", namespace=tenant_namespace)

    waiting.until(honoured, timeout=10, what="the operator's own binding honoured")
    assert not allowed(operator_token, verb="list", resource="secrets", namespace=tenant_namespace)


def test_the_operator_token_may_do_what_the_operator_needs(
    operator_token: lightkube.Client,
) -> None:
    group = "imagegen.semantest.io"
    assert allowed(
        operator_token, verb="patch", group=group, resource="tenants", subresource="status"
    )
    assert allowed(operator_token, verb="watch", group=group, resource="imagebatches")
    assert allowed(operator_token, verb="create", resource="namespaces")
    assert allowed(operator_token, verb="patch", resource="configmaps", namespace=NAMESPACE)
    assert allowed(operator_token, verb="get", resource="secrets", namespace=NAMESPACE)
    assert not allowed(operator_token, verb="list", resource="secrets", namespace=NAMESPACE)
    assert not allowed(operator_token, verb="patch", resource="configmaps", namespace="default")


REGION_REFUSED: dict[str, Callable[[lightkube.Client], object]] = {
    "read Secrets in the workers namespace": lambda c: list(
        c.list(core_v1.Secret, namespace=tenantworld.WORKERS)
    ),
    "create a ConfigMap in default": lambda c: c.create(config_map("default")),
    "create a namespace": lambda c: c.create(
        core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=unique_name("not-yours")))
    ),
    "list Deployments outside the workers namespace": lambda c: list(
        c.list(apps_v1.Deployment, namespace="default")
    ),
    "create a ClusterRole": lambda c: c.create(cluster_role("escalate")),
}


@pytest.mark.parametrize("what", sorted(REGION_REFUSED))
def test_the_operator_regional_token_is_refused(region_token: lightkube.Client, what: str) -> None:
    refused(lambda: REGION_REFUSED[what](region_token))


# Refused with the gateway's token


GATEWAY_REFUSED: dict[str, Callable[[lightkube.Client], object]] = {
    "read a region's kubeconfig Secret": lambda c: c.get(
        core_v1.Secret, kubeconfig_secret("us-east"), namespace=NAMESPACE
    ),
    "list Secrets in every namespace": lambda c: list(c.list(core_v1.Secret, namespace="*")),
    "write the API key index": lambda c: c.create(config_map(NAMESPACE)),
    "read ConfigMaps outside its namespace": lambda c: list(
        c.list(core_v1.ConfigMap, namespace="default")
    ),
    "delete an ImageBatch": lambda c: c.delete(resources.ImageBatch, "any", namespace="default"),
    "patch a Tenant": lambda c: c.patch(
        resources.Tenant, "any", {"spec": {"tier": "priority"}}, patch_type=PatchType.MERGE
    ),
    "create a ClusterRole": lambda c: c.create(cluster_role("escalate")),
}


@pytest.mark.parametrize("what", sorted(GATEWAY_REFUSED))
def test_the_gateway_token_is_refused(gateway_token: lightkube.Client, what: str) -> None:
    refused(lambda: GATEWAY_REFUSED[what](gateway_token))


def test_the_gateway_token_may_do_what_the_gateway_needs_and_never_write_status(
    gateway_token: lightkube.Client,
) -> None:
    group = "imagegen.semantest.io"
    # Reads that would raise a 403 if refused.
    list(gateway_token.list(resources.Tenant))
    list(
        gateway_token.list(
            core_v1.ConfigMap,
            namespace=NAMESPACE,
            labels={"imagegen.semantest.io/api-key-index": None},
        )
    )
    for verb in ("create", "get", "list", "watch", "patch"):
        assert allowed(
            gateway_token, verb=verb, group=group, resource="imagebatches", namespace="tenant-x"
        ), verb
    assert not allowed(
        gateway_token,
        verb="patch",
        group=group,
        resource="imagebatches",
        subresource="status",
        namespace="tenant-x",
    )
    assert not allowed(gateway_token, verb="get", resource="secrets", namespace="tenant-x")
