"""The scenario's Tenants: their manifests, their API keys, and their removal.

Rate limits and quotas are set so the flood is never limited away, and said so: each
tenant may make RATE_PER_MINUTE requests a minute (burst RATE_BURST) and have
IMAGES_PER_MINUTE images a minute admitted, where the flood needs at most a few batch
submissions a minute per tenant (a batch of 20 every ~10 s when a tenant has the whole
shared pool). The gateway's 429s are counted all the same, and waited out as their
Retry-After says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightkube
from lightkube import codecs
from lightkube.resources import core_v1

from imagegen import resources
from imagegen.localcluster import partner
from slabench import stack

RATE_PER_MINUTE = 120
RATE_BURST = 30
IMAGES_PER_MINUTE = 6000
MAX_ACTIVE_BATCHES = 100
"""Room for the premium tenant's backlog when it is served by the shared pool: a batch
every 30 s for 15 minutes is 30, all of which may still be active."""
PREMIUM_MIN_REPLICAS = 2
_READY_SECONDS = 180.0
_KEY_SECONDS = 60.0
_GONE_SECONDS = 240.0


def manifest(
    name: str, *, tier: str, dedicated: bool, premium_max: int, deadline_seconds: int
) -> dict[str, Any]:
    """A Tenant on the region's shared pool, or on a dedicated pool with the premium
    profile (its node pool and PriorityClass)."""
    workers: dict[str, Any] = {"pool": "shared"}
    if dedicated:
        workers = {
            "pool": "dedicated",
            "minReplicas": PREMIUM_MIN_REPLICAS,
            "maxReplicas": premium_max,
            "profile": stack.PREMIUM_PROFILE,
        }
    return {
        "apiVersion": "imagegen.semantest.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {
            "tier": tier,
            "namespace": f"tenant-{name}",
            "regions": [stack.REGION],
            "rateLimit": {"requestsPerMinute": RATE_PER_MINUTE, "burst": RATE_BURST},
            "quota": {
                "maxBatchSize": 100,
                "maxActiveBatches": MAX_ACTIVE_BATCHES,
                "maxImagesPerMinute": IMAGES_PER_MINUTE,
            },
            "sla": {"batchDeadlineSeconds": deadline_seconds},
            "workers": workers,
        },
    }


def create_ready(admin: lightkube.Client, manifests: list[dict[str, Any]]) -> dict[str, str]:
    """Create the Tenants, wait until each is Ready (its pools applied); return each one's
    API key, read from the Secret the operator writes, as a platform engineer would."""
    for obj in manifests:
        admin.create(codecs.from_dict(obj))
    names = [obj["metadata"]["name"] for obj in manifests]
    _wait_ready(admin, names)
    return {
        obj["metadata"]["name"]: partner.read_key(
            admin,
            tenant=obj["metadata"]["name"],
            namespace=obj["spec"]["namespace"],
            timeout_seconds=_KEY_SECONDS,
        )
        for obj in manifests
    }


def _wait_ready(admin: lightkube.Client, names: list[str]) -> None:
    deadline = time.monotonic() + _READY_SECONDS
    pending = set(names)
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Tenants not Ready within {_READY_SECONDS:.0f}s: {sorted(pending)}")
        for name in sorted(pending):
            status = resources.as_dict(admin.get(resources.Tenant, name)).get("status") or {}
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            ):
                pending.discard(name)
        time.sleep(1.0)


def remove(admin: lightkube.Client, region: lightkube.Client, names: list[str]) -> None:
    """Delete the batches, then the Tenants, and wait until they and every worker pod are
    gone (the sweep removes the shared pool once no shared tenant is left), so the next
    scenario starts from the same empty region."""
    for name in names:
        for batch in admin.list(resources.ImageBatch, namespace=f"tenant-{name}"):
            assert batch.metadata is not None
            assert batch.metadata.name is not None
            admin.delete(resources.ImageBatch, batch.metadata.name, namespace=f"tenant-{name}")
    _wait_gone(
        "batches",
        lambda: [
            b
            for name in names
            for b in admin.list(resources.ImageBatch, namespace=f"tenant-{name}")
        ],
    )
    for name in names:
        admin.delete(resources.Tenant, name)
    _wait_gone(
        "tenants",
        lambda: [
            t for t in admin.list(resources.Tenant) if t.metadata and t.metadata.name in names
        ],
    )
    _wait_gone("worker pods", lambda: list(region.list(core_v1.Pod, namespace=stack.WORKERS)))


def _wait_gone(what: str, listing: Callable[[], list[Any]]) -> None:
    deadline = time.monotonic() + _GONE_SECONDS
    while left := listing():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(left)} {what} still there after {_GONE_SECONDS:.0f}s")
        time.sleep(2.0)
