"""The label names a metric may carry: each has a bounded set of values.

A tenant is bounded by the Tenants the platform team creates; everything else by an enum
in the API or the code (an HTTP method by imagegen.metrics.gateway.METHODS). Batch and
item ids, prompts, keys and URLs are unbounded or secret and never become labels.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import registry as prometheus_registry

ALLOWED: frozenset[str] = frozenset(
    {
        "tenant",
        "region",
        "tier",
        "provider",
        "phase",
        "route",
        "method",
        "code",
        "reason",
        "kind",
        "lane",
    }
)

UNKNOWN_TENANT = "unknown"
"""The tenant label of a batch whose spec.tenant names no Tenant: any string could stand
there, and each would become a series of its own."""


def offending(registry: prometheus_registry.CollectorRegistry) -> list[str]:
    """'metric: label' for every label of the registry's imagegen_ metrics outside ALLOWED
    (the client's own process and platform metrics have theirs, each with one value)."""
    found: list[str] = []
    for family in registry.collect():
        if not family.name.startswith("imagegen_"):
            continue
        for sample in family.samples:
            found.extend(f"{sample.name}: {name}" for name in _extra(sample.labels))
    return sorted(set(found))


def _extra(names: Iterable[str]) -> list[str]:
    # `le` and `quantile` are the histogram's and summary's own, bounded by their buckets.
    return [name for name in names if name not in ALLOWED | {"le", "quantile"}]
