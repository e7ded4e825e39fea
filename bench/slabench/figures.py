"""What one scenario recorded and the figures drawn from it; pure, no I/O but the plot.

Every figure about the standard tenants is taken over the measurement window alone, the
same length in every scenario and only after the pools reached steady state, so the
scenarios compare like with like. A premium batch that had not finished when the run
stopped waiting counts with the time it had waited so far, marked as a lower bound.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence
from typing import Any

SHARED = "shared"
"""Key of the region's shared pool in the samples; a dedicated pool's key is its tenant."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchRecord:
    """One ImageBatch as its CR said at the end of the scenario."""

    name: str
    tenant: str
    phase: str | None
    succeeded: int
    created: float
    """metadata.creationTimestamp, Unix seconds: the gateway created it on the POST."""
    completed: float | None
    """status.completedAt, Unix seconds."""
    sla_met: bool | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolSample:
    """One worker pool at one moment."""

    hpa_replicas: int
    """The HPA's status.currentReplicas."""
    hpa_desired: int
    running: int
    """Pods Running and not being deleted: what the worker processes follow."""
    pending: int
    workers: int
    """Local worker processes serving the pool at that moment (SIMULATION)."""
    outside_node_pool: int
    """Running pods on nodes outside the premium node pool (only a dedicated pool has any)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Sample:
    """The pools and the images made so far, at `at` seconds since the scenario began."""

    at: float
    pools: dict[str, PoolSample]
    standard_images: int
    """Images the standard tenants' batches had succeeded so far (their CRs' counts)."""
    premium_images: int


@dataclasses.dataclass(kw_only=True)
class Recording:
    """Everything one scenario recorded."""

    scenario: str
    premium: str | None
    """The premium tenant's name; None in the baseline."""
    premium_on_shared: bool
    standard: list[str]
    warmup_seconds: float
    window_start: float
    """Seconds since the scenario began (as Sample.at) when the measurement window opened."""
    window_end: float
    waited_until: float
    """Unix seconds when the run stopped waiting for premium batches to finish."""
    samples: list[Sample]
    batches: list[BatchRecord]
    preempted: dict[str, int]
    """Worker pods the scheduler preempted during the scenario, by pool kind."""
    submissions: dict[str, int]
    """What the gateway answered: batches created, 429s waited out, other retries."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Quantile:
    """A nearest-rank quantile and whether it is a lower bound (an unfinished batch)."""

    seconds: float
    lower_bound: bool

    def __str__(self) -> str:
        return f"{'>=' if self.lower_bound else ''}{self.seconds:.0f}"


def premium_seconds(
    batches: Sequence[BatchRecord], *, premium: str, waited_until: float
) -> list[Quantile]:
    """Seconds from creation to completion of each premium batch, in submission order;
    an unfinished batch gets the time it had waited, as a lower bound."""
    mine = sorted((b for b in batches if b.tenant == premium), key=lambda b: b.created)
    return [
        Quantile(seconds=b.completed - b.created, lower_bound=False)
        if b.completed is not None
        else Quantile(seconds=waited_until - b.created, lower_bound=True)
        for b in mine
    ]


def nearest_rank(values: Sequence[Quantile], q: float) -> Quantile | None:
    """The q-quantile by nearest rank: always one of the values, so a lower bound stays
    marked as one. None for no values."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: (v.seconds, v.lower_bound))
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def window_samples(recording: Recording) -> list[Sample]:
    """The samples taken inside the measurement window."""
    return [s for s in recording.samples if recording.window_start <= s.at <= recording.window_end]


def summarize(
    recording: Recording, *, deadline_seconds: int, slots_per_worker: int, image_seconds: float
) -> dict[str, Any]:
    """The figures of one scenario."""
    inside = window_samples(recording)
    if len(inside) < 2:
        raise ValueError(f"{recording.scenario}: fewer than two samples in the window")
    first, last = inside[0], inside[-1]
    minutes = (last.at - first.at) / 60
    standard = last.standard_images - first.standard_images
    premium = last.premium_images - first.premium_images
    on_shared = standard + (premium if recording.premium_on_shared else 0)
    shared_workers = _mean([s.pools[SHARED].workers for s in inside if SHARED in s.pools])
    result: dict[str, Any] = {
        "warmup_seconds": round(recording.warmup_seconds),
        "window_minutes": round(minutes, 2),
        "standard_images": standard,
        "standard_images_per_minute": round(standard / minutes, 1),
        "standard_share_of_shared_pool": round(standard / on_shared, 3) if on_shared else None,
        "shared_pool_running_mean": _mean(
            [s.pools[SHARED].running for s in inside if SHARED in s.pools]
        ),
        "shared_pool_running_min": min(
            (s.pools[SHARED].running for s in inside if SHARED in s.pools), default=0
        ),
        "shared_pool_workers_mean": shared_workers,
        # What the shared pool's worker processes made per worker and minute, against the
        # ideal (slots x 60 / image cost): lower means the machine, not the pool, was short.
        "shared_images_per_worker_minute": (
            round(on_shared / (shared_workers * minutes), 1) if shared_workers else None
        ),
        "ideal_images_per_worker_minute": round(slots_per_worker * 60 / image_seconds, 1),
        "preempted_standard_workers": recording.preempted.get("standard", 0),
        "preempted_premium_workers": recording.preempted.get("premium", 0),
        "gateway": recording.submissions,
    }
    if recording.premium is None:
        return result
    times = premium_seconds(
        recording.batches, premium=recording.premium, waited_until=recording.waited_until
    )
    mine = [b for b in recording.batches if b.tenant == recording.premium]
    result |= {
        "premium_batches": len(mine),
        "premium_succeeded": sum(1 for b in mine if b.phase == "Succeeded"),
        "premium_sla_met": sum(1 for b in mine if b.sla_met),
        "premium_unfinished": sum(1 for t in times if t.lower_bound),
        "premium_within_deadline": sum(
            1 for t in times if not t.lower_bound and t.seconds <= deadline_seconds
        ),
        "premium_seconds": [str(t) for t in times],
        "premium_seconds_p50": _text(nearest_rank(times, 0.50)),
        "premium_seconds_p99": _text(nearest_rank(times, 0.99)),
        "premium_seconds_max": _text(nearest_rank(times, 1.0)),
        "premium_images_in_window": premium,
    }
    if not recording.premium_on_shared:
        pool = recording.premium
        result["premium_pool_running_mean"] = _mean(
            [s.pools[pool].running for s in inside if pool in s.pools]
        )
        result["premium_pool_outside_node_pool_mean"] = _mean(
            [s.pools[pool].outside_node_pool for s in inside if pool in s.pools]
        )
    return result


def compare(scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The gains as ratios within one run: each scenario's standard throughput against the
    baseline's, and the premium batch times on the shared pool against the dedicated one."""
    baseline = scenarios["baseline"]["standard_images_per_minute"]
    for figures in scenarios.values():
        figures["standard_throughput_vs_baseline"] = (
            round(figures["standard_images_per_minute"] / baseline, 3) if baseline else None
        )
    gains: dict[str, Any] = {}
    dedicated, shared = scenarios.get("dedicated"), scenarios.get("shared")
    if dedicated and shared:
        for key in ("premium_seconds_p50", "premium_seconds_p99", "premium_seconds_max"):
            gains[f"{key}_shared_over_dedicated"] = _ratio(shared[key], dedicated[key])
    return gains


def _ratio(numerator: str | None, denominator: str | None) -> str | None:
    """Ratio of two quantiles as text; `>=` when the numerator is a lower bound."""
    if numerator is None or denominator is None:
        return None
    top, bottom = float(numerator.lstrip(">=")), float(denominator.lstrip(">="))
    if bottom == 0 or denominator.startswith(">="):
        return None
    return f"{'>=' if numerator.startswith('>=') else ''}{top / bottom:.2f}"


def _text(value: Quantile | None) -> str | None:
    return None if value is None else str(value)


def _mean(values: Sequence[int]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


def print_table(report: dict[str, Any]) -> None:
    """The figures of every scenario, one row each, then the ratios."""
    header = (
        "scenario",
        "premium batches",
        "SLAMet",
        "p50 s",
        "p99 s",
        "max s",
        "std img/min",
        "vs baseline",
        "std share of shared pool",
        "shared pool Running (mean)",
        "std workers preempted",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, figures in report["scenarios"].items():
        row = (
            name,
            figures.get("premium_batches", "-"),
            figures.get("premium_sla_met", "-"),
            figures.get("premium_seconds_p50", "-"),
            figures.get("premium_seconds_p99", "-"),
            figures.get("premium_seconds_max", "-"),
            figures["standard_images_per_minute"],
            figures.get("standard_throughput_vs_baseline", "-"),
            figures["standard_share_of_shared_pool"],
            figures["shared_pool_running_mean"],
            figures["preempted_standard_workers"],
        )
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    for name, figures in report["scenarios"].items():
        if "premium_seconds" in figures:
            print(
                f"{name}: premium batch seconds in submission order:",
                " ".join(figures["premium_seconds"]),
            )
        print(
            f"{name}: warm-up {figures['warmup_seconds']} s, window"
            f" {figures['window_minutes']} min; shared pool made"
            f" {figures['shared_images_per_worker_minute']} images per worker-minute (ideal"
            f" {figures['ideal_images_per_worker_minute']}); premium workers preempted"
            f" {figures['preempted_premium_workers']}; gateway {figures['gateway']}"
        )
    for key, value in report["gains"].items():
        print(f"{key}: {value}")


def plot(recordings: Sequence[Recording], *, path: pathlib.Path, deadline_seconds: int) -> None:
    """Replicas over time per pool, one panel per scenario with the window shaded, and a
    last panel with every premium batch's time to done against the deadline."""
    # Imported here: a benchmark-only dependency (the `bench` extra).
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(
        len(recordings) + 1, 1, figsize=(10, 3.2 * (len(recordings) + 1)), squeeze=False
    )
    for axis, recording in zip(axes[:-1, 0], recordings, strict=True):
        _plot_replicas(axis, recording)
    _plot_premium(axes[-1, 0], recordings, deadline_seconds=deadline_seconds)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


_COLOURS = {SHARED: "tab:blue", "premium": "tab:orange"}


def _plot_replicas(axis: Any, recording: Recording) -> None:
    at = [s.at for s in recording.samples]
    for pool in sorted({key for s in recording.samples for key in s.pools}):
        kind = SHARED if pool == SHARED else "premium"
        colour, label = _COLOURS[kind], f"{kind} pool"
        series = [s.pools.get(pool) for s in recording.samples]
        lines = [("hpa_replicas", "-", "HPA replicas"), ("running", ":", "Running pods")]
        if kind != SHARED:
            lines.append(("outside_node_pool", "--", "Running outside its node pool"))
        for field, style, what in lines:
            axis.step(
                at,
                [getattr(p, field) if p else 0 for p in series],
                where="post",
                linestyle=style,
                color=colour,
                label=f"{label}: {what}",
            )
    axis.axvspan(
        recording.window_start,
        recording.window_end,
        color="grey",
        alpha=0.12,
        label="measurement window",
    )
    axis.set_title(f"{recording.scenario}: worker replicas per pool")
    axis.set_ylabel("replicas")
    axis.set_xlabel("seconds since the scenario's flood began")
    axis.set_ylim(bottom=0)
    axis.legend(loc="best", fontsize="x-small")


def _plot_premium(axis: Any, recordings: Sequence[Recording], *, deadline_seconds: int) -> None:
    for recording, colour in zip(recordings, ("tab:grey", "tab:green", "tab:red"), strict=False):
        if recording.premium is None:
            continue
        mine = sorted(
            (b for b in recording.batches if b.tenant == recording.premium), key=lambda b: b.created
        )
        times = premium_seconds(
            mine, premium=recording.premium, waited_until=recording.waited_until
        )
        first = mine[0].created if mine else 0.0
        done = [
            (b.created - first, t.seconds)
            for b, t in zip(mine, times, strict=True)
            if not t.lower_bound
        ]
        waiting = [
            (b.created - first, t.seconds)
            for b, t in zip(mine, times, strict=True)
            if t.lower_bound
        ]
        axis.plot(
            [d[0] for d in done],
            [d[1] for d in done],
            "o",
            color=colour,
            label=f"{recording.scenario}: done",
        )
        if waiting:
            axis.plot(
                [w[0] for w in waiting],
                [w[1] for w in waiting],
                "^",
                color=colour,
                fillstyle="none",
                label=f"{recording.scenario}: unfinished (at least)",
            )
    axis.axhline(deadline_seconds, color="black", linestyle="--", linewidth=1, label="deadline")
    axis.set_title("premium batches: seconds from POST to done, by submission time")
    axis.set_xlabel("seconds since the first premium batch")
    axis.set_ylabel("seconds")
    axis.legend(loc="upper left", fontsize="x-small")
