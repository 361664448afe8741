"""Warm latency: one webhook, as FullStory's sender sees it, through the real functions-framework server.

The client holds one keep-alive connection per function (as a sender does), sends one request at a
time, and times send-to-answer-read. fs2split and the bare function take turns event by event, so a
noisy neighbour slows both alike. The stream is the realistic one: most users send several events,
so most webhooks hit the uid cache and pay one upstream call; a user's first pays two.
"""

from __future__ import annotations

from bench.common import JSON_HEADERS, FakeUpstream, Metric, Served, Workload, expect, median, percentile

SLOW_UPSTREAM_S = 0.05
WARM_UP = 20  # users whose one event each opens connections and fills caches before timing starts


def run(
    up: FakeUpstream,
    fs2split: Served,
    bare: Served,
    info: Served,
    workload: Workload,
    *,
    events: int,
    users: int,
    slow_events: int,
    slow_users: int,
) -> list[Metric]:
    up.latency = 0.0
    for user in workload.users(min(WARM_UP, max(2, events // 10)), up):
        for function in (fs2split, info):
            expect(function.post("/fullstory", workload.body(user), JSON_HEADERS)[1], 200, "delivered")
        expect(bare.post("/", workload.body(user), JSON_HEADERS)[1], 200)
    ours: list[float] = []
    baseline: list[float] = []
    at_info: list[float] = []
    for user in workload.stream(events, workload.users(users, up)):
        seconds, response = fs2split.post("/fullstory", workload.body(user), JSON_HEADERS)
        expect(response, 200, "delivered")
        ours.append(seconds)
        seconds, response = bare.post("/", workload.body(user), JSON_HEADERS)
        expect(response, 200)
        baseline.append(seconds)
        seconds, response = info.post("/fullstory", workload.body(user), JSON_HEADERS)
        expect(response, 200, "delivered")
        at_info.append(seconds)

    slow: list[float] = []
    waiting: list[float] = []
    wait_path = f"/?wait_ms={SLOW_UPSTREAM_S * 1000:g}"
    up.latency = SLOW_UPSTREAM_S
    try:
        for user in workload.stream(slow_events, workload.users(slow_users, up)):
            seconds, response = fs2split.post("/fullstory", workload.body(user), JSON_HEADERS)
            expect(response, 200, "delivered")
            slow.append(seconds)
            # The floor for one upstream wait: the bare function idling as long, no I/O at all.
            seconds, response = bare.post(wait_path, workload.body(user), JSON_HEADERS)
            expect(response, 200)
            waiting.append(seconds)
    finally:
        up.latency = 0.0

    def ms(values: list[float], pct: float | None = None) -> float:
        return (median(values) if pct is None else percentile(values, pct)) * 1000

    shape = f"{events} events, {users} users"
    slow_shape = f"{slow_events} events, {slow_users} users"
    return [
        Metric("latency.bare_median_ms", "bare function: median", ms(baseline), " ms", note=shape),
        Metric("latency.bare_p95_ms", "bare function: p95", ms(baseline, 95), " ms", note=shape),
        Metric("latency.median_ms", "fs2split, upstream at once: median", ms(ours), " ms", note=shape),
        Metric("latency.p95_ms", "fs2split, upstream at once: p95", ms(ours, 95), " ms", note=shape),
        Metric("latency.ratio", "warm median / bare function's median", ms(ours) / ms(baseline), "×", "<=", 2.5),
        Metric(
            "latency.info_median_ms",
            "fs2split at LOG_LEVEL=INFO, upstream at once: median",
            ms(at_info),
            " ms",
            note=f"{shape}; one JSON log line per request, to a file",
        ),
        Metric(
            "latency.slow_median_ms",
            f"fs2split, {SLOW_UPSTREAM_S * 1000:.0f} ms per upstream call: median",
            ms(slow),
            " ms",
            "<=",
            58,
            note=f"{slow_shape}; the original: ~104 ms (two calls per event)",
        ),
        Metric(
            "latency.bare_wait_median_ms",
            f"bare function that idles {SLOW_UPSTREAM_S * 1000:.0f} ms (the floor for one upstream wait): median",
            ms(waiting),
            " ms",
            note="taking turns with the line above",
        ),
        Metric(
            "latency.slow_p95_ms",
            f"fs2split, {SLOW_UPSTREAM_S * 1000:.0f} ms per upstream call: p95",
            ms(slow, 95),
            " ms",
            note=f"{slow_shape}; a user's first event also pays the lookup",
        ),
    ]
