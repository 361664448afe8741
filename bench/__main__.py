"""``./dev bench``: every figure in BENCHMARKS.md, measured in one run on this machine.

./dev bench                    the full run (about two minutes on 2 cores)
./dev bench --quick            a smoke run: small numbers, meaningless figures, every metric present
./dev bench --json out.json    also write the results as JSON
./dev bench --check            exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    cold_start,
    dedup_store,
    emf_line,
    impressions_batch,
    latency,
    listener_cost,
    load,
    memory,
    queue_mode,
    round_trips,
)
from bench.common import FakeUpstream, Metric, Workload, serve_bare, serve_fs2split, served


@dataclass(frozen=True)
class Plan:
    cold_start_repetitions: int = 11
    events: int = 600  # round trips and warm latency
    users: int = 60
    slow_events: int = 200  # warm latency with 50 ms upstream: each takes 50-100 ms, and a bare wait too
    slow_users: int = 20
    memory_events: int = 10_000
    memory_users: int = 1_000
    impressions: tuple[int, int, int] = (1_000, 10_000, 50_000)  # one webhook each; the middle one has the target
    impressions_repetitions: int = 3
    listener_batches: int = 200
    listener_batch_size: int = 100
    emf_lines: int = 5_000  # log lines per batch, with and without the EMF block
    queue_events: int = 2000  # drained in batches of 1,000
    queue_users: int = 200
    queue_latency_events: int = 200
    queue_backlog: int = 10_000
    dedup_import_repetitions: int = 7  # fresh interpreters per SDK
    dedup_round_trips: int = 300  # webhooks per emulator
    load_events: int = 400  # per fault scenario, from 40 concurrent senders


QUICK = Plan(
    cold_start_repetitions=1,
    events=30,
    users=6,
    slow_events=6,
    slow_users=2,
    memory_events=60,
    memory_users=10,
    impressions=(120, 240, 360),
    impressions_repetitions=1,
    listener_batches=4,
    listener_batch_size=40,
    emf_lines=50,
    queue_events=40,
    queue_users=6,
    queue_latency_events=6,
    queue_backlog=200,
    dedup_import_repetitions=1,
    dedup_round_trips=5,
    load_events=40,
)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def measure(plan: Plan) -> list[Metric]:
    metrics: list[Metric] = []
    # In-process and subprocess measurements first, while no server competes for the cores.
    _stage("cold start")
    metrics += cold_start.run(plan.cold_start_repetitions)
    _stage("listener cost")
    metrics += listener_cost.run(plan.listener_batches, plan.listener_batch_size)
    _stage("emf line")
    metrics += emf_line.run(plan.emf_lines)
    _stage("shared dedup stores")
    metrics += dedup_store.run(plan.dedup_import_repetitions, plan.dedup_round_trips)
    workload = Workload()
    with FakeUpstream() as up:
        # Booted together (in parallel), used one after another.
        fs2split, bare, at_info = serve_fs2split(up), serve_bare(), serve_fs2split(up, "fs2split-info", "INFO")
        # Its own instance: a 50,000-impression webhook's peak memory is its own figure, not the memory row's.
        volume = serve_fs2split(up, "fs2split-volume")
        with served(fs2split, bare, at_info, volume):
            _stage("round trips")
            metrics += round_trips.run(up, fs2split, workload, plan.events, plan.users)
            _stage("warm latency")
            metrics += latency.run(
                up,
                fs2split,
                bare,
                at_info,
                workload,
                events=plan.events,
                users=plan.users,
                slow_events=plan.slow_events,
                slow_users=plan.slow_users,
            )
            _stage("queue mode")
            metrics += queue_mode.run(
                up,
                fs2split,
                workload,
                events=plan.queue_events,
                users=plan.queue_users,
                latency_events=plan.queue_latency_events,
                backlog=plan.queue_backlog,
            )
            _stage("impressions batch")
            metrics += impressions_batch.run(up, volume, plan.impressions, plan.impressions_repetitions)
            # Last: the peak of an instance that has also done everything above.
            _stage("memory")
            metrics += memory.run(up, fs2split, workload, plan.memory_events, plan.memory_users)
            _stage("stopping")
    # Its own stand-ins and server: faults scripted here must not reach the figures above.
    _stage("load and faults")
    metrics += load.run(plan.load_events)
    return metrics


_clock = time.monotonic()


def _stage(name: str) -> None:
    print(f"bench: {time.monotonic() - _clock:5.1f} s  {name}...", file=sys.stderr, flush=True)


def table(metrics: list[Metric]) -> str:
    rows = [("Measure", "Result", "Target", ""), ("---", "---:", "---:", ":---:")]
    for m in metrics:
        verdict = "" if m.ok is None else ("ok" if m.ok else "MISSED")
        rows.append((m.label + (f" ({m.note})" if m.note else ""), m.shown(), m.target, verdict))
    return "\n".join(f"| {' | '.join(row)} |" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small numbers: proves it runs, measures nothing")
    parser.add_argument("--events", type=int, metavar="N", help="webhooks in the round-trip and latency streams")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    if args.events:
        plan = dataclasses.replace(plan, events=args.events, users=max(1, args.events // 10))
    started = time.monotonic()
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    metrics = measure(plan)
    seconds = time.monotonic() - started
    host = machine()
    missed = [m for m in metrics if m.ok is False]
    print(f"\nfs2split benchmark, {when}: {host['nproc']} cores ({host['cpu']}), Python {host['python']}")
    print(f"{'QUICK (smoke) run: figures mean nothing. ' if args.quick else ''}Took {seconds:.0f} s.\n")
    print(table(metrics))
    print(f"\n{len(missed)} target(s) missed." if missed else "\nEvery target met.")
    if any(not math.isfinite(m.value) for m in metrics):
        print("bench: a figure is not a finite number", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "date": when,
                    "machine": host,
                    "quick": args.quick,
                    "plan": dataclasses.asdict(plan),
                    "seconds": round(seconds, 1),
                    "metrics": [m.as_json() for m in metrics],
                    "all_targets_met": not missed,
                },
                indent=2,
                allow_nan=False,
            )
            + "\n"
        )
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
