"""The batch's `StoreAvailable` condition: whether its region's workers can reach the
object store, from what they report (`queue.storehealth`). A store outage delays a batch
without failing it; this condition is where the delay is explained: the region, the
store (URL and endpoint, never credentials) and the reason (Unreachable, AccessDenied,
NotFound, Refused)."""

from __future__ import annotations

import datetime

from imagegen import regions
from imagegen.api import imagebatch
from imagegen.controller import conditions
from imagegen.queue import storehealth

TYPE = "StoreAvailable"


async def read(*, region: regions.RegionClient, pool: str) -> storehealth.Trouble | None:
    """The pool's current store trouble (a Redis error propagates, as progress's does)."""
    return await storehealth.read(redis=region.redis, pool=pool)


def apply(
    *,
    status: imagebatch.ImageBatchStatus,
    trouble: storehealth.Trouble | None,
    region: str,
    generation: int | None,
    now: datetime.datetime,
) -> imagebatch.ImageBatchStatus:
    """The status with the condition set: False while trouble is reported, True once it
    clears after having been False; absent while the store never failed."""
    existing = conditions.find(status.conditions, TYPE)
    if trouble is None:
        if existing is None or existing.status == "True":
            return status
        updated = conditions.set_condition(
            status.conditions or [], type=TYPE, status="True", reason="Stored",
            message=f"the object store of region {region} answers again",
            generation=generation, now=now,
        )  # fmt: skip
    else:
        updated = conditions.set_condition(
            status.conditions or [], type=TYPE, status="False", reason=trouble.reason,
            message=(
                f"region {region}: object store {trouble.store}: {trouble.reason} "
                f"({trouble.detail}); items wait and are retried, none fails for it"
            ),
            generation=generation, now=now,
        )  # fmt: skip
    return status.model_copy(update={"conditions": updated})
