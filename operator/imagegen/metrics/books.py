"""Collectors over what the operator keeps in memory, read whole at scrape time.

The operator's asyncio loop writes them and the metrics server's thread reads them;
each write replaces one entry (or the whole sample) at once, so a scrape sees either the
old or the new value, never a half-cleared gauge.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

AT_RISK_SECONDS = 60.0
"""A batch not done this close to its deadline is at risk."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchEntry:
    """What the book needs of one ImageBatch."""

    tenant: str
    tier: str
    phase: str
    deadline: float | None = None
    """Unix seconds; None until admitted."""
    done: bool = False


class BatchBook(Collector):
    """ImageBatches by tenant and phase, and those at risk of missing their deadline."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._entries: dict[str, BatchEntry] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def record(self, *, uid: str, entry: BatchEntry) -> None:
        """The batch's latest phase (and deadline); replaces what was there."""
        with self._lock:
            self._entries[uid] = entry

    def forget(self, *, uid: str) -> None:
        """The batch is gone."""
        with self._lock:
            self._entries.pop(uid, None)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            entries = list(self._entries.values())
        now = self._clock()
        phases = GaugeMetricFamily(
            "imagegen_batches",
            "ImageBatches the operator knows, by tenant, tier and phase.",
            labels=["tenant", "tier", "phase"],
        )
        at_risk = GaugeMetricFamily(
            "imagegen_batches_at_risk",
            f"Unfinished batches whose deadline is less than {AT_RISK_SECONDS:g} s away,"
            " by tenant and tier.",
            labels=["tenant", "tier"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        risky: dict[tuple[str, str], int] = {}
        for entry in entries:
            key = (entry.tenant, entry.tier, entry.phase)
            counts[key] = counts.get(key, 0) + 1
            risky.setdefault((entry.tenant, entry.tier), 0)
            if (
                not entry.done
                and entry.deadline is not None
                and 0 <= entry.deadline - now <= AT_RISK_SECONDS
            ):
                risky[(entry.tenant, entry.tier)] += 1
        for phase_key, count in sorted(counts.items()):
            phases.add_metric(list(phase_key), count)
        for risk_key, count in sorted(risky.items()):
            at_risk.add_metric(list(risk_key), count)
        return [phases, at_risk]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LaneSample:
    """One lane of one tenant in one region, as last sampled."""

    queued: int
    oldest_age_seconds: float


LaneKey = tuple[str, str, str]
"""(tenant, lane, region); the lane is the batch priority: high, normal or low."""


class QueueBook(Collector):
    """Queued items and the oldest one's age, per tenant, lane and region."""

    def __init__(self) -> None:
        self._regions: dict[str, Mapping[LaneKey, LaneSample]] = {}
        self._lock = threading.Lock()

    def replace_region(self, *, region: str, lanes: Mapping[LaneKey, LaneSample]) -> None:
        """The region's whole sample; lanes absent from it are empty now."""
        with self._lock:
            self._regions[region] = dict(lanes)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            samples = [lane for lanes in self._regions.values() for lane in lanes.items()]
        depth = GaugeMetricFamily(
            "imagegen_queue_depth",
            "Items queued, per tenant, lane (priority) and region; empty lanes are absent.",
            labels=["tenant", "lane", "region"],
        )
        age = GaugeMetricFamily(
            "imagegen_queue_oldest_item_age_seconds",
            "How long the oldest queued item of the lane has waited.",
            labels=["tenant", "lane", "region"],
        )
        for key, sample in sorted(samples):
            depth.add_metric(list(key), sample.queued)
            age.add_metric(list(key), sample.oldest_age_seconds)
        return [depth, age]
