"""The region registry reaches each regional cluster the way its configuration says."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import pathlib
from collections.abc import AsyncIterator

import lightkube
import redis.asyncio as aioredis
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen import regions
from imagegen.api import operatorconfig
from imagegen.kube import clients
from imagegen.localcluster import cluster, operatorsetup, redis


@contextlib.asynccontextmanager
async def as_operator(
    setup: operatorsetup.OperatorSetup, config: operatorconfig.OperatorConfig, name: str
) -> AsyncIterator[regions.RegionClient]:
    """The registry's client of one region, built as the operator builds it: under its own
    ServiceAccount, which reads the region's Secrets in the management cluster."""
    management = clients.async_client(kubeconfig=setup.kubeconfig)
    registry = await regions.connect(config=config, management=management)
    try:
        region = registry.get(name)
        assert region is not None
        yield region
    finally:
        await registry.close()
        await management.close()


def test_a_region_reached_through_a_kubeconfig_secret(
    kube: lightkube.Client,
    operator_setup: operatorsetup.OperatorSetup,
) -> None:
    kubeconfig = operator_setup.region_kubeconfigs["eu-west"].read_bytes()
    kube.apply(
        core_v1.Secret(
            metadata=meta_v1.ObjectMeta(name="region-eu-west", namespace="imagegen-system"),
            data={"kubeconfig": base64.b64encode(kubeconfig).decode()},
        ),
        field_manager="test",
    )
    config = operatorconfig.OperatorConfig.model_validate(
        {
            "regions": [
                {
                    "name": "eu-west",
                    "kubeconfigSecret": {"name": "region-eu-west", "key": "kubeconfig"},
                    "redis": {"url": "redis://127.0.0.1:6379/0"},
                }
            ]
        }
    )

    async def workers_namespace() -> str:
        # As the operator: its own ServiceAccount reads the Secret in the management cluster.
        async with (
            as_operator(operator_setup, config, "eu-west") as region,
            region.call() as client,
        ):
            namespace = await client.get(core_v1.Namespace, "imagegen-workers")
        assert namespace.metadata is not None
        return str(namespace.metadata.name)

    assert asyncio.run(workers_namespace()) == "imagegen-workers"


def test_an_unreachable_region_fails_fast_with_a_transport_error(
    binaries: dict[str, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    gone = cluster.start(name="gone", workdir=tmp_path / "gone", binaries=binaries)
    gone.stop()
    config = operatorconfig.OperatorConfig.model_validate(
        {
            "regions": [
                {"name": "gone", "kubeconfig": str(gone.kubeconfig),
                 "redis": {"url": "redis://127.0.0.1:6379/0"}}
            ],
            "regionConnectTimeoutSeconds": 1,
        }
    )  # fmt: skip

    async def attempt() -> BaseException | None:
        management = clients.async_client(kubeconfig=gone.kubeconfig)
        registry = await regions.connect(config=config, management=management)
        region = registry.get("gone")
        assert region is not None
        try:
            async with region.call() as client:
                await client.get(core_v1.Namespace, "default")
        except regions.UNREACHABLE_ERRORS as error:
            return error
        finally:
            await registry.close()
            await management.close()
        return None

    assert asyncio.run(attempt()) is not None


def test_a_regions_tls_redis_is_reached_with_the_ca_and_password_of_its_secrets(
    kube: lightkube.Client,
    operator_setup: operatorsetup.OperatorSetup,
    tls_redis: redis.LocalTlsRedis,
) -> None:
    """As the operator: its ServiceAccount reads the CA bundle (a ConfigMap) and the
    password (a Secret) in its namespace, and its calls are bounded by the region timeouts."""
    kube.apply(
        core_v1.ConfigMap(
            metadata=meta_v1.ObjectMeta(name="region-tls-redis-ca", namespace="imagegen-system"),
            data={"bundle.pem": tls_redis.pki.ca_cert.read_text()},
        ),
        field_manager="test",
    )
    kube.apply(
        core_v1.Secret(
            metadata=meta_v1.ObjectMeta(name="region-tls-redis", namespace="imagegen-system"),
            data={"password": base64.b64encode(tls_redis.password.encode()).decode()},
        ),
        field_manager="test",
    )
    config = operatorconfig.OperatorConfig.model_validate(
        {
            "regions": [
                {
                    "name": "us-east",
                    "kubeconfig": str(operator_setup.region_kubeconfigs["us-east"]),
                    "redis": {
                        "url": tls_redis.url,
                        "passwordSecret": {"name": "region-tls-redis", "key": "password"},
                        "ca": {"configMap": "region-tls-redis-ca", "key": "bundle.pem"},
                    },
                }
            ],
            "regionRequestTimeoutSeconds": 7,
            "regionConnectTimeoutSeconds": 2,
        }
    )

    async def ping() -> tuple[bool, dict[str, object]]:
        async with as_operator(operator_setup, config, "us-east") as region:
            assert isinstance(region.redis, aioredis.Redis)
            return await region.redis.ping(), region.redis.connection_pool.connection_kwargs

    answered, kwargs = asyncio.run(ping())
    assert answered is True
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (2, 7)
