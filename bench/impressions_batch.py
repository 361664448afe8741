"""Impressions at volume: one gzipped FME impressions webhook of 1,000, 10,000 and 50,000 impressions, answered
by the real server, against the loopback FullStory answering every call after 50 ms (a normal internet round
trip).

FME counts only an exact 200 and gives up after one retry 300 ms later. Above
``FS2SPLIT_IMPRESSIONS_BATCH_THRESHOLD`` new impressions, fs2split writes them as FullStory batch import jobs
and answers 200 once every job is accepted. Each figure is checked: 200 ``delivered`` with every impression in
exactly one accepted job. Each webhook holds new impressions (repeats would be skipped as duplicates).
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator
from typing import Any

from bench.common import JSON_HEADERS, FakeUpstream, Metric, Served, expect, median, proc_status_kb

LATENCY_S = 0.05
_serial: Iterator[int] = itertools.count(1)


def batch(count: int) -> list[dict[str, Any]]:
    """``count`` distinct impressions shaped as FME's outgoing webhook sends them."""
    items = []
    for _ in range(count):
        n = next(_serial)
        items.append(
            {
                "key": f"customer-{n:07d}",
                "split": ("checkout_redesign", "new_pricing", "search_v2")[n % 3],
                "environmentId": "194da2f0-3e22-11ea-ba75-12f2f63694e5",
                "environmentName": "Production",
                "treatment": ("on", "off")[n % 2],
                "time": 1_717_200_000_000 + n,
                "bucketingKey": None,
                "label": "default rule",
                "machineName": "ip-10-0-0-12",
                "machineIp": "10.0.0.12",
                "splitVersionNumber": 1_717_100_000_000,
                "sdk": "python",
                "sdkVersion": "10.7.0",
                "properties": None,
            }
        )
    return items


def _send(fs2split: Served, up: FakeUpstream, count: int) -> tuple[float, int, int, int]:
    """(seconds to the 200, FullStory calls it took, gzipped and plain body bytes), after checking every
    impression is in exactly one accepted job."""
    items = batch(count)
    plain = json.dumps(items).encode()
    body = gzip.compress(plain)
    calls_before, jobs_before = len(up.calls()), set(up.fullstory_jobs())
    seconds, response = fs2split.post("/split/impressions", body, JSON_HEADERS)
    expect(response, 200, "delivered")
    answered = response.json()
    new_jobs = {job: events for job, events in up.fullstory_jobs().items() if job not in jobs_before}
    written = sorted(event["user"]["uid"] for events in new_jobs.values() for event in events)
    if answered.get("delivered") != count or written != sorted(item["key"] for item in items):
        raise RuntimeError(f"impressions: answered {answered.get('delivered')}, jobs hold {len(written)}, sent {count}")
    if {job["id"] for job in answered.get("jobs", [])} != set(new_jobs):
        raise RuntimeError("impressions: the answer's job ids are not the jobs FullStory accepted")
    return seconds, len(up.calls()) - calls_before, len(body), len(plain)


def run(up: FakeUpstream, fs2split: Served, counts: tuple[int, int, int], repetitions: int) -> list[Metric]:
    small, target, large = counts
    _send(fs2split, up, 150)  # warm: the route's first batch, and a connection to FullStory
    up.latency = LATENCY_S
    try:
        runs = {count: [_send(fs2split, up, count) for _ in range(repetitions)] for count in (small, target)}
        runs[large] = [_send(fs2split, up, large)]  # once: it is the slowest, and shows the same thing
    finally:
        up.latency = 0.0
        up.reset()
    metrics: list[Metric] = []
    for count, key in ((small, "small"), (target, "target"), (large, "large")):
        times = [sent[0] for sent in runs[count]]
        calls = max(sent[1] for sent in runs[count])
        is_target = count == target
        metrics.append(
            Metric(
                f"impressions.{key}_seconds" if not is_target else "impressions.seconds",
                f"one gzipped webhook of {count:,} impressions, FullStory at 50 ms: answered 200",
                median(times),
                " s",
                "<" if is_target else None,
                3 if is_target else None,
                note=f"median of {len(times)} (max {max(times):.2f} s); every impression in exactly one accepted job",
            )
        )
        metrics.append(
            Metric(
                f"impressions.{key}_calls" if not is_target else "impressions.calls",
                f"FullStory calls for that webhook of {count:,}",
                calls,
                "",
                "<=" if is_target else None,
                2 if is_target else None,
            )
        )
    body = runs[large][0][2]
    metrics.append(
        Metric("impressions.large_gzip_mb", f"gzipped body of {large:,} impressions (limit 6 MiB)", body / 2**20, " MB")
    )
    metrics.append(
        Metric(
            "impressions.worker_peak_mb",
            "peak RSS of the worker that served these webhooks (VmHWM)",
            proc_status_kb(fs2split.worker_pid(), "VmHWM") / 1024,
            " MB",
            note=f"its own instance; the largest webhook inflates to {runs[large][0][3] / 2**20:.1f} MB of JSON",
        )
    )
    return metrics
