"""The webhook service as the gateway runs it: a batch's status changes on a real
apiserver arrive, signed, at a receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import lightkube
import pytest
import redis.asyncio as aioredis
from lightkube import codecs
from lightkube.models import meta_v1
from lightkube.resources import core_v1
from lightkube.types import PatchType

from imagegen import resources
from imagegen.api import meta
from imagegen.gateway.webhooks import dispatcher, service, signing
from imagegen.kube import clients
from imagegen.localcluster import cluster
from imagegen.metrics import gateway as catalogue
from tests import builders
from tests.integration import waiting
from tests.integration.webhookreceiver import Answer, Received, Receiver

pytestmark = pytest.mark.usefixtures("crds_installed")

TENANT = "svc"
SECRET = signing.new_secret()
COUNTED = f"svc-counted-{uuid.uuid4().hex[:6]}"
"""The tenant whose counts one test reads: its own, so that deliveries the producer makes
again for other tests' batches (their namespaces still terminating, their receivers gone)
never add to them."""


@dataclasses.dataclass
class Settings:
    """The two gateway settings the service reads."""

    webhook_allowlist: list[str]
    operator_namespace: str


@pytest.fixture
def namespaces(kube: lightkube.Client) -> Iterator[tuple[str, str]]:
    """(the batches' namespace, the namespace with the published signing secrets)."""
    names = (f"tenant-{TENANT}-{uuid.uuid4().hex[:6]}", f"system-{uuid.uuid4().hex[:6]}")
    for name in names:
        kube.create(core_v1.Namespace(metadata=meta_v1.ObjectMeta(name=name)))
    kube.create(
        core_v1.Secret(
            metadata=meta_v1.ObjectMeta(name=meta.WEBHOOK_SECRETS, namespace=names[1]),
            data={
                tenant: base64.b64encode(SECRET.encode()).decode() for tenant in (TENANT, COUNTED)
            },
        )
    )
    yield names
    for name in names:
        kube.delete(core_v1.Namespace, name)


@pytest.fixture
async def webhook_service(
    management: cluster.LocalCluster,
    scratch_redis: aioredis.Redis,
    namespaces: tuple[str, str],
) -> AsyncIterator[service.WebhookService]:
    kube = clients.async_client(kubeconfig=management.kubeconfig)
    running = service.WebhookService(
        kube=kube,
        watches=kube,
        redis=scratch_redis,
        settings=Settings(webhook_allowlist=["127.0.0.1"], operator_namespace=namespaces[1]),
        options=dispatcher.Options(block_ms=200, retry_poll_seconds=0.1),
    )
    await running.start()
    yield running
    await running.stop()
    await kube.close()


async def test_status_changes_arrive_signed_and_in_order(
    kube: lightkube.Client,
    namespaces: tuple[str, str],
    webhook_receiver: Receiver,
    webhook_service: service.WebhookService,
) -> None:
    batches = namespaces[0]
    body = builders.make_batch("svc-batch", tenant=TENANT).namespace(batches).items(4)
    kube.create(codecs.from_dict(body.webhook(webhook_receiver.url, "running", "succeeded").obj()))
    for status in (
        {"phase": "Queued", "progress": "0/4"},
        {"phase": "Running", "progress": "1/4"},
        {"phase": "Running", "progress": "3/4"},
        {"phase": "Succeeded", "progress": "4/4"},
    ):
        kube.patch(
            resources.ImageBatch.Status,
            "svc-batch",
            {"status": status},
            namespace=batches,
            patch_type=PatchType.MERGE,
        )

    arrived = await waiting.until_async(
        lambda: _at_least(webhook_receiver, 2), seconds=60, what="two deliveries"
    )

    for got in arrived:
        signing.verify(secret=SECRET, headers=got.headers, body=got.body, now=int(time.time()))
    # Deliveries run concurrently and retries reorder them: order is by payload timestamp.
    payloads = sorted((json.loads(got.body) for got in arrived), key=lambda p: p["timestamp"])
    assert sorted(p["type"] for p in payloads) == ["batch.completed", "batch.started"]
    completed = next(p for p in payloads if p["type"] == "batch.completed")
    assert (completed["data"]["status"], completed["data"]["namespace"]) == ("Succeeded", batches)


def counted(name: str, **labels: str) -> float:
    """A sample of the gateway's registry (this process's: the service runs here)."""
    return catalogue.REGISTRY.get_sample_value(name, {"tenant": COUNTED, **labels}) or 0.0


async def test_attempts_are_counted_by_tenant_and_answer_class_and_a_retry_as_a_retry(
    kube: lightkube.Client,
    namespaces: tuple[str, str],
    webhook_receiver: Receiver,
    webhook_service: service.WebhookService,
) -> None:
    before = {
        "2xx": counted("imagegen_webhook_deliveries_total", code="2xx"),
        "5xx": counted("imagegen_webhook_deliveries_total", code="5xx"),
        "retries": counted("imagegen_webhook_retries_total"),
    }
    webhook_receiver.script = [Answer(status=503, headers={"Retry-After": "1"})]
    batches = namespaces[0]
    body = builders.make_batch("svc-counted", tenant=COUNTED).namespace(batches).items(1)
    kube.create(codecs.from_dict(body.webhook(webhook_receiver.url, "succeeded").obj()))
    kube.patch(
        resources.ImageBatch.Status,
        "svc-counted",
        {"status": {"phase": "Succeeded", "progress": "1/1"}},
        namespace=batches,
        patch_type=PatchType.MERGE,
    )

    await waiting.until_async(
        lambda: _at_least(webhook_receiver, 1), seconds=60, what="the delivery after a 503"
    )

    async def settled() -> bool | None:
        # The receiver has answered before the dispatcher settles and counts the attempt.
        now = counted("imagegen_webhook_deliveries_total", code="2xx")
        return now == before["2xx"] + 1 or None

    await waiting.until_async(settled, seconds=10, what="the delivery counted once settled")
    assert counted("imagegen_webhook_deliveries_total", code="5xx") == before["5xx"] + 1
    assert counted("imagegen_webhook_deliveries_total", code="2xx") == before["2xx"] + 1
    assert counted("imagegen_webhook_retries_total") == before["retries"] + 1
    exposition = catalogue.REGISTRY.collect()
    assert all(webhook_receiver.url not in str(family) for family in exposition)


async def _at_least(receiver: Receiver, count: int) -> list[Received] | None:
    return list(receiver.ok()) if len(receiver.ok()) >= count else None
