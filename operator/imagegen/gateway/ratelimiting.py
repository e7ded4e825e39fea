"""The tenant's limits as GCRA limits, and the response headers that describe them:
`RateLimit-Policy` and `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers) plus the
older `X-RateLimit-Limit`, `-Remaining` and `-Reset`, all about the requests limit."""

from __future__ import annotations

import math

from imagegen import ratelimit
from imagegen.gateway import keyspace, tenants


def limits(tenant: tenants.TenantView, *, images: int = 0) -> list[ratelimit.Limit]:
    """One request, and `images` items charged against the images-per-minute quota."""
    decided = [
        ratelimit.Limit(
            key=keyspace.requests_limit(tenant.name),
            per_minute=tenant.requests_per_minute,
            burst=tenant.burst,
        )
    ]
    if images:
        decided.append(
            ratelimit.Limit(
                key=keyspace.images_limit(tenant.name),
                per_minute=tenant.images_per_minute,
                # A minute's worth at once: the quota is per minute, not a trickle.
                burst=tenant.images_per_minute,
                cost=images,
            )
        )
    return decided


_POLICY_NAMES = ("requests", "images")


def headers(decision: ratelimit.Decision) -> dict[str, str]:
    """Headers for a response to a request that this decision was about."""
    policies, states = [], []
    for name, outcome in zip(_POLICY_NAMES, decision.outcomes, strict=False):
        limit = outcome.limit
        policies.append(f'"{name}";q={limit.burst};w={limit.window_seconds}')
        states.append(f'"{name}";r={outcome.remaining};t={math.ceil(outcome.reset_seconds)}')
    first = decision.outcomes[0]
    found = {
        "RateLimit-Policy": ", ".join(policies),
        "RateLimit": ", ".join(states),
        "X-RateLimit-Limit": str(first.limit.burst),
        "X-RateLimit-Remaining": str(first.remaining),
        "X-RateLimit-Reset": str(math.ceil(first.reset_seconds)),
    }
    if not decision.admitted:
        found["Retry-After"] = str(max(1, math.ceil(decision.retry_after_seconds)))
    return found
