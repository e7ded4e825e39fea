"""Where the operator's Secret rights come from: never a cluster-wide rule, only the one
role it binds itself to in tenant namespaces (manifests/rbac is rendered from the chart)."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from imagegen.api import meta
from imagegen.controller import secretaccess

MANAGEMENT_RBAC = pathlib.Path(__file__).parents[2] / "manifests" / "rbac" / "management.yaml"


def objects(kind: str) -> list[dict[str, Any]]:
    documents = yaml.safe_load_all(MANAGEMENT_RBAC.read_text())
    return [d for d in documents if d and d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects(kind) if o["metadata"]["name"] == name]
    return found


def test_a_service_account_is_bound_as_a_service_account() -> None:
    subject = secretaccess.subject_for("system:serviceaccount:imagegen-system:imagegen-operator")
    assert (subject.kind, subject.namespace, subject.name) == (
        "ServiceAccount",
        "imagegen-system",
        "imagegen-operator",
    )


def test_a_developer_kubeconfig_is_bound_as_its_user() -> None:
    subject = secretaccess.subject_for("kubernetes-admin")
    assert (subject.kind, subject.name, subject.namespace) == ("User", "kubernetes-admin", None)


def test_the_operators_cluster_role_grants_no_secret_and_binds_only_the_tenant_role() -> None:
    rules = named("ClusterRole", "imagegen-operator")["rules"]
    assert not [r for r in rules if "secrets" in r["resources"]]
    (bind,) = [r for r in rules if "bind" in r["verbs"]]
    assert bind["resources"] == ["clusterroles"]
    assert bind["resourceNames"] == [meta.TENANT_SECRETS_ROLE]


def test_the_tenant_secret_role_never_lists_and_is_never_bound_cluster_wide() -> None:
    (rule,) = named("ClusterRole", meta.TENANT_SECRETS_ROLE)["rules"]
    assert rule["resources"] == ["secrets"]
    assert sorted(rule["verbs"]) == ["create", "delete", "get", "patch"]
    bound_cluster_wide = [b["roleRef"]["name"] for b in objects("ClusterRoleBinding")]
    assert meta.TENANT_SECRETS_ROLE not in bound_cluster_wide


def test_the_admission_policy_guards_the_operators_bindings_and_denies() -> None:
    policy = named("ValidatingAdmissionPolicy", meta.TENANT_SECRETS_ROLE)
    (resource_rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert resource_rule["resources"] == ["rolebindings"]
    binding = named("ValidatingAdmissionPolicyBinding", meta.TENANT_SECRETS_ROLE)
    assert binding["spec"] == {
        "policyName": meta.TENANT_SECRETS_ROLE,
        "validationActions": ["Deny"],
    }
