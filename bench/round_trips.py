"""Round trips: upstream HTTP calls per FullStory event, as the loopback FullStory + FME recorded them.

Direct mode pays one FME post per event plus one FullStory user lookup per distinct user (the uid
cache), so its limit is ``1 + distinct users / events``. The original paid two calls per event.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from bench.common import JSON_HEADERS, FakeUpstream, Metric, Served, Workload, client_session, expect

CONCURRENT_SENDERS = 8
CONCURRENT_LATENCY_S = 0.05


def _counts(up: FakeUpstream) -> tuple[int, int, int]:
    return len(up.calls()), len(up.calls("GET", "/v2/users/")), len(up.calls("POST", "/api/events/bulk"))


def run(up: FakeUpstream, fs2split: Served, workload: Workload, events: int, users: int) -> list[Metric]:
    # Warm the instance with other users, then forget what was recorded: the measured users start
    # uncached, as they would after a cold start, while the connections are already open.
    for user in workload.users(3, up):
        expect(fs2split.post("/fullstory", workload.body(user), JSON_HEADERS)[1], 200, "delivered")
    ids = workload.users(users, up)
    stream = workload.stream(events, ids)
    up.reset()
    for user in stream:
        expect(fs2split.post("/fullstory", workload.body(user), JSON_HEADERS)[1], 200, "delivered")
    calls, lookups, posts = _counts(up)
    delivered = len(up.fme_events())
    if delivered != events:
        raise RuntimeError(f"round trips: {delivered} of {events} events reached FME")
    distinct = len(set(stream))
    limit = 1 + distinct / events
    concurrent = _concurrent(up, fs2split, workload, events, users)
    return [
        Metric(
            "round_trips.per_event",
            f"upstream calls per event ({events} events, {distinct} users, Zipf {workload.skew})",
            calls / events,
            "",
            "<=",
            round(limit + 0.02, 4),
            note=f"{lookups} user lookups + {posts} FME posts; the original: 2.0",
        ),
        Metric("round_trips.limit", "direct-mode limit: 1 + distinct users / events", limit, ""),
        Metric(
            "round_trips.concurrent_per_event",
            f"upstream calls per event, {CONCURRENT_SENDERS} concurrent senders, "
            f"{CONCURRENT_LATENCY_S * 1000:.0f} ms upstream",
            concurrent,
            "",
            note="same stream shape; concurrent first events of one user may each look it up",
        ),
    ]


def _concurrent(up: FakeUpstream, fs2split: Served, workload: Workload, events: int, users: int) -> float:
    """The same kind of stream, sent by several senders at once against a slower upstream (information)."""
    stream = workload.stream(events, workload.users(users, up))
    bodies = [workload.body(user) for user in stream]
    local = threading.local()

    def send(body: bytes) -> None:
        if not hasattr(local, "session"):
            local.session = client_session()
        expect(local.session.post(f"{fs2split.url}/fullstory", data=body, headers=JSON_HEADERS, timeout=30), 200)

    up.reset()
    up.latency = CONCURRENT_LATENCY_S
    try:
        with ThreadPoolExecutor(CONCURRENT_SENDERS) as pool:
            list(pool.map(send, bodies))
    finally:
        up.latency = 0.0
    return len(up.calls()) / events
