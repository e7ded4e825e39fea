"""What goes into the queue and what comes out: plain frozen dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any

from imagegen.api import imagebatch
from imagegen.api import tenant as tenant_api

Json = dict[str, Any]
"""A JSON object as json.loads returns it."""

EXPIRED = "lease expired"
"""The error an item records when its lease ran out (see `common.lua`, reclaim)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchRef:
    """The batch an item belongs to, with what decides its place in the queue."""

    uid: str
    """The ImageBatch's metadata.uid: unique for the life of the cluster."""
    tenant: str
    tier: tenant_api.Tier
    """priority-tier tenants are served before any standard-tier one."""
    priority: imagebatch.Priority
    """Within a tenant: high before normal before low."""
    weight: int = 1
    """The tenant's share against other tenants of its tier in a shared pool (>= 1)."""

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError(f"weight: must be >= 1, got {self.weight}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ItemSpec:
    """One item to enqueue: its id within the batch and what the worker needs."""

    id: str
    payload: Json
    """Prompt, size, seed, providers, format...: opaque to the queue, stored as JSON."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Lease:
    """An item handed to a worker until `expires_at`, unless renewed."""

    batch_uid: str
    item_id: str
    tenant: str
    tier: tenant_api.Tier
    priority: imagebatch.Priority
    payload: Json
    attempt: int
    """1 on the first delivery; counts every lease, including those that expired, except
    those handed back unfinished by `Queue.release`."""
    worker_id: str
    token: str
    """Proves this delivery is still the current one when renewing or failing."""
    expires_at: float
    """Unix seconds."""
    previous_error: str | None = None
    """Why the item's previous lease ended (`EXPIRED` when it ran out unrenewed); None
    on a first delivery."""

    @property
    def redelivered(self) -> bool:
        """Whether an earlier lease of the item ended (expired, failed, retried)."""
        return self.attempt > 1 or self.previous_error is not None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ItemProgress:
    """Where one item stands."""

    id: str
    state: imagebatch.ItemState
    attempts: int
    result: Json | None
    """What the worker completed it with (for example the image's URI); first one wins."""
    error: str | None
    """The last error: of the final failure, or of the latest retried attempt."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchProgress:
    """Counts and per-item states of one batch, read in one atomic step."""

    uid: str
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    cancel_requested: bool
    items: tuple[ItemProgress, ...]
    """In enqueue order."""

    @property
    def finished(self) -> bool:
        """True when no item is queued or running (and the batch has items)."""
        return self.total > 0 and self.queued == 0 and self.running == 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class LaneDepth:
    """Queued items of one (tenant, tier, priority) and how long the oldest has waited."""

    queued: int
    oldest_age_seconds: float


DepthKey = tuple[str, tenant_api.Tier, imagebatch.Priority]
"""(tenant, tier, priority)."""
