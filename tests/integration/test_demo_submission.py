"""The demo's path, as `make demo` takes it: read a tenant's API key from the Secret the
operator wrote, and submit the example 100-image batch over HTTP to the gateway, which
turns it into the ImageBatch CR."""

from __future__ import annotations

import pathlib

import lightkube

from imagegen.localcluster import partner
from tests.integration.gatewayworld import GatewayWorld

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "imagebatch-100.yaml"


def test_the_demo_batch_goes_in_over_http_and_becomes_its_cr(
    gateway_world: GatewayWorld, kube: lightkube.Client
) -> None:
    name = gateway_world.tenant("demo")
    namespace = f"tenant-{name}"
    key = partner.read_key(kube, tenant=name, namespace=namespace, timeout_seconds=60)
    assert key == gateway_world.key(name)
    _, body = partner.request_from_manifest(EXAMPLE)
    # Submitted at once: the gateway may not know the new key yet, and submit waits for it.
    created = partner.submit(
        base_url=gateway_world.gateway.url, key=key, body=body, timeout_seconds=60
    )
    assert created["request_counts"]["total"] == 100
    assert created["links"]["self"] == f"/api/v1/batches/{created['id']}"
    cr = gateway_world.batch(name, created["id"])
    assert cr["spec"]["tenant"] == name
    assert [item["id"] for item in cr["spec"]["items"]] == [item["id"] for item in body["items"]]
    assert cr["spec"]["defaults"]["size"] == "512x512"
    assert len(gateway_world.batches(name)) == 1, "retries made no second batch"
