"""Each Tenant's webhook signing secret: made by the real operator next to its API key,
published for the gateway in one Secret of the operator's namespace, which is all the
gateway may read; kept across key rotations, withdrawn when the Tenant goes."""

from __future__ import annotations

import base64
import pathlib
from collections.abc import AsyncIterator

import lightkube
import pytest
from lightkube.models import meta_v1
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.api import meta
from imagegen.gateway.webhooks import secretstore
from imagegen.kube import clients
from imagegen.localcluster import cluster, operatorsetup
from tests.integration import waiting
from tests.integration.tenantworld import World, new_tenant, unique_name

REPO = pathlib.Path(__file__).resolve().parents[2]
SYSTEM = operatorsetup.NAMESPACE
GATEWAY = "imagegen-gateway"


@pytest.fixture(scope="module")
def gateway_kubeconfig(
    kube: lightkube.Client,
    management: cluster.LocalCluster,
    operator_setup: operatorsetup.OperatorSetup,
    tmp_path_factory: pytest.TempPathFactory,
) -> pathlib.Path:
    """A kubeconfig of a gateway ServiceAccount bound to manifests/rbac/gateway.yaml
    and nothing else."""
    kube.apply(
        core_v1.ServiceAccount(metadata=meta_v1.ObjectMeta(name=GATEWAY, namespace=SYSTEM)),
        field_manager="tests",
    )
    return operatorsetup.service_account_kubeconfig(
        target=management,
        manifest=REPO / "manifests" / "rbac" / "gateway.yaml",
        workdir=tmp_path_factory.mktemp("gateway"),
        account=GATEWAY,
    )


@pytest.fixture
async def gateway_kube(gateway_kubeconfig: pathlib.Path) -> AsyncIterator[lightkube.AsyncClient]:
    client = clients.async_client(kubeconfig=gateway_kubeconfig)
    yield client
    await client.close()


def secret_data(kube: lightkube.Client, name: str, namespace: str) -> dict[str, str]:
    try:
        found = kube.get(core_v1.Secret, name, namespace=namespace)
    except lightkube.ApiError:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}


def wait_webhook_secret(kube: lightkube.Client, name: str) -> str:
    """The tenant's signing secret once the operator made and published it."""

    def made() -> str | None:
        own = secret_data(kube, f"{name}-api-key", f"tenant-{name}").get("webhook-secret")
        published = secret_data(kube, meta.WEBHOOK_SECRETS, SYSTEM).get(name)
        return own if own is not None and own == published else None

    return waiting.until(made, timeout=60, what=f"webhook secret of {name}")


def test_a_tenant_gets_a_signing_secret_beside_its_api_key(world: World) -> None:
    name = unique_name("hooks")
    world.create(new_tenant(name, "us-east").obj())

    secret = wait_webhook_secret(world.kube, name)

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    own = secret_data(world.kube, f"{name}-api-key", f"tenant-{name}")
    assert own["api-key"].startswith("igk_")


def test_rotating_the_api_key_keeps_the_signing_secret(world: World) -> None:
    name = unique_name("hookrot")
    world.create(new_tenant(name, "us-east").obj())
    secret = wait_webhook_secret(world.kube, name)
    key = secret_data(world.kube, f"{name}-api-key", f"tenant-{name}")["api-key"]

    world.kube.patch(
        resources.Tenant,
        name,
        {"metadata": {"annotations": {"imagegen.semantest.io/rotate-api-key": "r2"}}},
        patch_type=PatchType.MERGE,
    )

    def rotated_secret() -> dict[str, str] | None:
        data = secret_data(world.kube, f"{name}-api-key", f"tenant-{name}")
        return data if data.get("api-key") not in (None, key) else None

    rotated = waiting.until(rotated_secret, what="a new API key")
    assert rotated["webhook-secret"] == secret
    assert secret_data(world.kube, meta.WEBHOOK_SECRETS, SYSTEM)[name] == secret


async def test_the_gateway_reads_the_published_secret_and_no_other(
    world: World, gateway_kube: lightkube.AsyncClient
) -> None:
    name = unique_name("hookgw")
    world.create(new_tenant(name, "us-east").obj())
    secret = wait_webhook_secret(world.kube, name)

    store = secretstore.SigningSecrets(kube=gateway_kube, namespace=SYSTEM)
    assert await store.get(name) == secret
    for forbidden, namespace in ((f"{name}-api-key", f"tenant-{name}"), ("other", SYSTEM)):
        with pytest.raises(lightkube.ApiError) as refused:
            await gateway_kube.get(core_v1.Secret, forbidden, namespace=namespace)
        assert refused.value.status.code == 403


def test_deleting_the_tenant_withdraws_its_signing_secret(world: World) -> None:
    name = unique_name("hookdel")
    world.create(new_tenant(name, "us-east").obj())
    wait_webhook_secret(world.kube, name)

    world.kube.delete(resources.Tenant, name)

    waiting.until(
        lambda: name not in secret_data(world.kube, meta.WEBHOOK_SECRETS, SYSTEM),
        what="the published secret withdrawn",
    )
