"""Kubernetes-shaped conditions: set one, keeping its transition time when its status
did not change, so that rewriting the same state changes nothing."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from imagegen.api import meta


def set_condition(
    conditions: Sequence[meta.Condition],
    *,
    type: str,
    status: meta.ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime.datetime,
) -> list[meta.Condition]:
    """The conditions with `type` replaced (or added); lastTransitionTime moves only when
    the status changes."""
    previous = next((c for c in conditions if c.type == type), None)
    changed_at = previous.last_transition_time if previous and previous.status == status else now
    updated = meta.Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=changed_at,
        observed_generation=generation,
    )
    return (
        [updated if c.type == type else c for c in conditions]
        if previous
        else [
            *conditions,
            updated,
        ]
    )


def find(conditions: Sequence[meta.Condition] | None, type: str) -> meta.Condition | None:
    """The condition of that type, if any."""
    return next((c for c in conditions or () if c.type == type), None)
