"""Impressions batch: one gzipped FME impressions webhook, answered by the real server.

FME counts only an exact 200, and fs2split answers 200 only once every impression is in FullStory,
so the time measured is the time to write all of them (concurrently) to the loopback FullStory.
Each batch holds new impressions: repeats of one already written would be skipped as duplicates.
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator
from typing import Any

from bench.common import JSON_HEADERS, FakeUpstream, Metric, Served, expect, median

_serial: Iterator[int] = itertools.count(1)


def batch(count: int) -> list[dict[str, Any]]:
    """``count`` distinct impressions shaped as FME's outgoing webhook sends them."""
    items = []
    for _ in range(count):
        n = next(_serial)
        items.append(
            {
                "key": f"customer-{n:06d}",
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


def _send(fs2split: Served, up: FakeUpstream, count: int) -> float:
    body = gzip.compress(json.dumps(batch(count)).encode())
    before = len(up.fullstory_events())
    seconds, response = fs2split.post("/split/impressions", body, JSON_HEADERS)
    expect(response, 200, "delivered")
    delivered = response.json().get("delivered")
    arrived = len(up.fullstory_events()) - before
    if delivered != count or arrived != count:
        raise RuntimeError(f"impressions: answered delivered={delivered}, FullStory got {arrived}, sent {count}")
    return seconds


def run(up: FakeUpstream, fs2split: Served, count: int, repetitions: int) -> list[Metric]:
    _send(fs2split, up, 20)  # warm: the route's first use, and connections to FullStory
    times = [_send(fs2split, up, count) for _ in range(repetitions)]
    up.reset()
    return [
        Metric(
            "impressions.seconds",
            f"one gzipped webhook of {count} impressions: answered 200",
            median(times),
            " s",
            "<",
            3,
            note=f"median of {repetitions} (max {max(times):.2f} s); each answered 200 with all {count} "
            "delivered to FullStory",
        ),
        Metric("impressions.per_second", "impressions written to FullStory per second", count / median(times), "/s"),
    ]
