"""Every program of examples/clients/ (docs/integration.md) runs against the live gateway
and exits 0 after its batch succeeded: Python with httpx and websockets, TypeScript
compiled by tsc against the client types openapi-typescript generated from
docs/openapi.json (`make client-examples`). The webhook examples verify real signed
deliveries from the gateway."""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Iterator

import lightkube
import pytest

from imagegen.api import meta
from imagegen.localcluster import cluster, process, redis
from tests.integration import clientexamples, conftest, gatewayproc, tenantworld, workingtenant
from tests.integration.gatewayworld import GatewayWorld

FOLLOWERS = [
    clientexamples.python("follow_websocket"),
    clientexamples.python("follow_sse"),
    clientexamples.python("follow_polling"),
    clientexamples.node("follow_websocket"),
    clientexamples.node("follow_sse"),
    clientexamples.node("follow_polling"),
]
RECEIVERS = [clientexamples.python("webhook_receiver"), clientexamples.node("webhook_receiver")]


@pytest.fixture(scope="module")
def tenant(
    kube: lightkube.Client,
    regions: dict[str, cluster.LocalCluster],
    running_gateway: gatewayproc.GatewayProcess,
    region_redis: dict[str, redis.LocalRedis],
    gateway_images: pathlib.Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayWorld, str, str]]:
    """One tenant with a worker for every example of the module: (world, name, key)."""
    gw = GatewayWorld(world=tenantworld.World(kube=kube, regions=regions), gateway=running_gateway)
    with workingtenant.working_tenant(
        gw, prefix="ex", redis_url=region_redis[workingtenant.REGION].url,
        images=gateway_images, logs=tmp_path_factory.mktemp("example-workers"),
    ) as (name, key):  # fmt: skip
        yield gw, name, key


@pytest.mark.parametrize("argv", FOLLOWERS, ids=lambda argv: pathlib.Path(argv[1]).name)
def test_each_client_example_follows_its_batch_to_success_and_saves_the_images(
    argv: list[str], tenant: tuple[GatewayWorld, str, str], tmp_path: pathlib.Path
) -> None:
    gw, _, key = tenant
    env = {"IMAGEGEN_URL": gw.gateway.url, "IMAGEGEN_API_KEY": key}
    output = clientexamples.run(argv, env=env, cwd=tmp_path)
    assert "Succeeded, 5 images saved under out/" in output
    assert len(clientexamples.saved_images(tmp_path)) == 5
    assert "requests left" in output


def receiver_env(gw: GatewayWorld, key: str, secret: str) -> dict[str, str]:
    """What a webhook example needs: the gateway, the key and the signing secret, and
    where to listen, on the one address the session's gateway may send webhooks to."""
    host = conftest.GATEWAY_WEBHOOK_HOST
    port = process.free_port(host)
    return {
        "IMAGEGEN_URL": gw.gateway.url,
        "IMAGEGEN_API_KEY": key,
        "IMAGEGEN_WEBHOOK_SECRET": secret,
        "WEBHOOK_HOST": host,
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_PUBLIC_URL": f"http://{host}:{port}/hooks/imagegen",
    }


@pytest.mark.parametrize("argv", RECEIVERS, ids=lambda argv: pathlib.Path(argv[1]).name)
def test_each_webhook_example_verifies_real_signed_deliveries(
    argv: list[str], tenant: tuple[GatewayWorld, str, str], tmp_path: pathlib.Path
) -> None:
    gw, name, key = tenant
    env = receiver_env(gw, key, gw.key(name, which=meta.WEBHOOK_SECRET_KEY))
    output = clientexamples.run(argv, env=env, cwd=tmp_path)
    assert "verified batch.started" in output
    assert "verified batch.completed: Succeeded 5/5" in output
    assert "refused" not in output


def test_a_receiver_refuses_a_delivery_signed_with_another_secret(
    tenant: tuple[GatewayWorld, str, str], tmp_path: pathlib.Path
) -> None:
    gw, _, key = tenant
    env = receiver_env(gw, key, "whsec_" + "A" * 43 + "=")
    done = subprocess.run(
        RECEIVERS[0], env={**os.environ, **env, "WEBHOOK_WAIT_SECONDS": "20"}, cwd=tmp_path,
        capture_output=True, text=True, timeout=clientexamples.RUN_SECONDS, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "refused a delivery: no signature matches" in done.stdout
