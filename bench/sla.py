"""Benchmark: does the premium SLA (100 images within 300 s) hold under a standard flood?

On one management and one regional cluster of the local stack (real kube-scheduler, kwok
nodes, metrics-server, the real HPA controller), the real operator and the real gateway,
each under its ServiceAccount, ten standard tenants flood the region's shared pool through
the gateway (each keeps --standard-active batches of --standard-batch images unfinished,
POSTed with its own API key) in three scenarios of one run:

- `baseline`:  the flood alone; the standard throughput the others are compared with.
- `dedicated`: the flood, and the premium tenant (tier priority) on its dedicated pool,
  whose profile tolerates the premium node pool's taint, prefers its nodes and names the
  PriorityClass imagegen-premium; it POSTs a 100-image batch every 30 s.
- `shared`:    the same flood and premium load, the premium tenant on the shared pool as a
  standard tenant: no dedicated pool, no priority.

The region is full: its general nodes hold exactly the shared pool at maxReplicas
(--general-nodes x --workers-per-node), the premium node pool (--premium-nodes x
--workers-per-node, tainted) holds fewer workers than the premium pool's --premium-max,
so a premium burst past its node pool preempts shared workers (the scheduler's own
preemption, counted from its Events).

Every scenario starts from an empty region, warms up until the shared pool runs its
maxReplicas (and the premium pool its minimum) for 30 s, and only then measures, for
--minutes: the premium batches go in during that window, and the standard images are
counted over it alone, so the scenarios compare the same steady state over the same length.

SIMULATION, said so: the worker pods are kwok pods, which run nothing. The images are made
by local `imagegen worker` processes (the local provider, 64x64 images, a fixed
--image-seconds each) against the region's Redis, one process per Running pod of each
pool: the pods are watched, and the processes follow the count within half a second
(plus a worker's start-up), so the slots follow the HPA's replicas as the scheduler places
them. The pods' CPU is set from each pool's queue by the load model (`imagegen.sim`),
which the metrics API reports and the HPA scales on.

Prints per scenario the premium batches' time to Succeeded (p50, p99, max against the
300 s deadline; every batch's time), SLAMet count, the standard tenants' throughput, its
ratio to the baseline's, their share of the shared pool, the shared pool's Running
replicas, the workers preempted, and the gain as ratios; writes bench/results/sla.json
and bench/results/sla.png (replicas over time per pool).

    make bench-sla                          # 3 x 15 minutes: about an hour in all
    .venv/bin/python bench/sla.py --minutes 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import time
from typing import Any

from slabench import figures, scenario, stack

RESULTS = stack.REPO / "bench" / "results"
SCENARIOS = ("baseline", "dedicated", "shared")
DEADLINE_SECONDS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="measurement window")
    parser.add_argument("--image-seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=4, help="slots per worker")
    parser.add_argument("--standard-batch", type=int, default=20)
    parser.add_argument("--standard-active", type=int, default=2)
    parser.add_argument("--general-nodes", type=int, default=2)
    parser.add_argument("--premium-nodes", type=int, default=1)
    parser.add_argument("--workers-per-node", type=int, default=4)
    parser.add_argument("--premium-max", type=int, default=6, help="premium maxReplicas")
    parser.add_argument("--results", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    settings = scenario.Settings(
        minutes=args.minutes,
        image_seconds=args.image_seconds,
        concurrency=args.concurrency,
        standard_batch=args.standard_batch,
        standard_active=args.standard_active,
        premium_max=args.premium_max,
        deadline_seconds=DEADLINE_SECONDS,
        capacity=stack.Capacity(
            general_nodes=args.general_nodes,
            workers_per_general_node=args.workers_per_node,
            premium_nodes=args.premium_nodes,
            workers_per_premium_node=args.workers_per_node,
        ),
    )
    recordings: list[figures.Recording] = []
    began = time.monotonic()
    with stack.running(capacity=settings.capacity, premium_max=settings.premium_max) as world:
        print(
            f"stack ready in {time.monotonic() - began:.0f}s; gateway {world.gateway_url}",
            flush=True,
        )
        for name in SCENARIOS:
            started = time.monotonic()
            print(f"scenario {name}: warm-up, then {settings.minutes:g} min", flush=True)
            recordings.append(scenario.run(scenario=name, world=world, settings=settings))
            print(f"scenario {name}: done in {time.monotonic() - started:.0f}s", flush=True)
    report = build_report(recordings, settings=settings)
    report["wall_minutes"] = round((time.monotonic() - began) / 60, 1)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "sla.json").write_text(json.dumps(report, indent=2) + "\n")
    figures.plot(recordings, path=args.results / "sla.png", deadline_seconds=DEADLINE_SECONDS)
    print(f"settings: {json.dumps(report['settings'])}")
    figures.print_table(report)


def build_report(
    recordings: list[figures.Recording], *, settings: scenario.Settings
) -> dict[str, Any]:
    """Settings, figures per scenario, the ratios, and what was recorded."""
    scenarios = {
        recording.scenario: figures.summarize(
            recording,
            deadline_seconds=settings.deadline_seconds,
            slots_per_worker=settings.concurrency,
            image_seconds=settings.image_seconds,
        )
        for recording in recordings
    }
    gains = figures.compare(scenarios)
    return {
        "settings": {
            **{k: v for k, v in dataclasses.asdict(settings).items() if k != "capacity"},
            "shared_max": settings.capacity.general_workers,
            "premium_node_pool_workers": settings.capacity.premium_node_pool_workers,
            "worker_millicores": stack.WORKER_MILLICORES,
            "premium_batch": scenario.PREMIUM_BATCH,
            "premium_every_seconds": scenario.PREMIUM_EVERY_SECONDS,
        },
        "scenarios": scenarios,
        "gains": gains,
        "recordings": [dataclasses.asdict(recording) for recording in recordings],
    }


if __name__ == "__main__":
    main()
