"""The region registry reaches each regional cluster the way its configuration says."""

from __future__ import annotations

import asyncio
import base64
import pathlib

import lightkube
from lightkube.models import meta_v1
from lightkube.resources import core_v1

from imagegen import regions
from imagegen.api import operatorconfig
from imagegen.localcluster import cluster, operatorsetup


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
        management = lightkube.AsyncClient(
            config=lightkube.KubeConfig.from_file(operator_setup.kubeconfig), trust_env=False
        )
        registry = await regions.connect(config=config, management=management)
        try:
            region = registry.get("eu-west")
            assert region is not None
            async with region.call() as client:
                namespace = await client.get(core_v1.Namespace, "imagegen-workers")
        finally:
            await registry.close()
            await management.close()
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
        management = lightkube.AsyncClient(
            config=lightkube.KubeConfig.from_file(gone.kubeconfig), trust_env=False
        )
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
