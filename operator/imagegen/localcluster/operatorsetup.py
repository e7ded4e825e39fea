"""Install the operator's RBAC into a local stack and give it credentials that carry
exactly those privileges: a ServiceAccount token per cluster, never the admin token."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml
from lightkube.models import authentication_v1, meta_v1
from lightkube.resources import core_v1

from imagegen.api import objectstore
from imagegen.kube import clients
from imagegen.localcluster import cluster, install, stack

SERVICE_ACCOUNT = "imagegen-operator"
NAMESPACE = "imagegen-system"
_TOKEN_SECONDS = 24 * 3600


@dataclasses.dataclass(frozen=True, kw_only=True)
class OperatorSetup:
    """Where the operator's kubeconfig and configuration file were written."""

    kubeconfig: pathlib.Path
    config_path: pathlib.Path
    region_kubeconfigs: dict[str, pathlib.Path]


def prepare(
    *,
    local: stack.LocalStack,
    rbac_dir: pathlib.Path,
    redis_urls: Mapping[str, str],
    workdir: pathlib.Path,
    config_overrides: dict[str, Any] | None = None,
    stores: Mapping[str, objectstore.ObjectStore] | None = None,
) -> OperatorSetup:
    """Apply rbac_dir/management.yaml and rbac_dir/region.yaml, mint tokens, and write a
    kubeconfig per cluster plus the operator configuration file naming them, each
    region's Redis (redis_urls, by region name) and object store (`stores`, if given)."""
    workdir.mkdir(parents=True, exist_ok=True)
    management = service_account_kubeconfig(
        target=local.management, manifest=rbac_dir / "management.yaml", workdir=workdir
    )
    regional = {
        name: service_account_kubeconfig(
            target=running, manifest=rbac_dir / "region.yaml", workdir=workdir
        )
        for name, running in local.regions.items()
    }
    config: dict[str, Any] = {
        "regions": [
            {
                "name": name,
                "kubeconfig": str(path),
                "redis": {"url": redis_urls[name]},
                **(
                    {"storage": stores[name].model_dump(mode="json", exclude_defaults=True)}
                    if stores and name in stores
                    else {}
                ),
            }
            for name, path in regional.items()
        ],
        **(config_overrides or {}),
    }
    config_path = workdir / "operator-config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return OperatorSetup(
        kubeconfig=management, config_path=config_path, region_kubeconfigs=regional
    )


def service_account_kubeconfig(
    *,
    target: cluster.LocalCluster,
    manifest: pathlib.Path,
    workdir: pathlib.Path,
    account: str = SERVICE_ACCOUNT,
    namespace: str = NAMESPACE,
) -> pathlib.Path:
    """Apply `manifest` (RBAC for an existing or included ServiceAccount), mint a token of
    `account` and write a kubeconfig that acts as it, and as nothing more."""
    with clients.sync_client(kubeconfig=target.kubeconfig) as admin:
        install.apply_files(client=admin, paths=[manifest])
    return token_kubeconfig(
        target=target,
        path=workdir / f"{target.name}.{account}.kubeconfig",
        account=account,
        namespace=namespace,
    )


def token_kubeconfig(
    *,
    target: cluster.LocalCluster,
    path: pathlib.Path,
    account: str = SERVICE_ACCOUNT,
    namespace: str = NAMESPACE,
) -> pathlib.Path:
    """Write a kubeconfig for target that carries a fresh token (TokenRequest API) of the
    ServiceAccount and nothing else; return its path."""
    with clients.sync_client(kubeconfig=target.kubeconfig) as admin:
        request = core_v1.ServiceAccountToken(
            metadata=meta_v1.ObjectMeta(name=account, namespace=namespace),
            spec=authentication_v1.TokenRequestSpec(audiences=[], expirationSeconds=_TOKEN_SECONDS),
        )
        issued = admin.create(request, account, namespace=namespace)
    assert issued.status is not None, "a TokenRequest answer always carries a token"
    assert issued.status.token is not None
    cluster.write_kubeconfig(
        path=path,
        name=target.name,
        server=target.server,
        ca_cert=target.ca_cert,
        token=issued.status.token,
        user=f"system:serviceaccount:{namespace}:{account}",
    )
    return path
