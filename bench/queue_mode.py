"""Queue mode (docs/queue.md) on the Cloud SDK's Pub/Sub emulator, through the real functions-framework server:

- FME calls per FullStory event when a stream is drained in batches of 1,000 (direct mode: 1), and the identity
  lookups the drain made (at most one per distinct user per drain instance);
- the webhook's answer time in queue mode at 0 and 50 ms FME latency (it does not wait for FME), against direct
  mode at 50 ms;
- the time one drain run takes to deliver 10,000 queued events to the loopback FME.
"""

from __future__ import annotations

import base64
import hashlib
import time

import requests

from bench.common import (
    JSON_HEADERS,
    ROOT,
    FakeUpstream,
    Metric,
    Served,
    Workload,
    expect,
    fs2split_env,
    median,
)
from fs2split.queue import message
from tests.support.queues import PubSubEmulator

SLOW_FME_S = 0.05
PROJECT = "fs2split-bench"


def run(
    up: FakeUpstream, direct: Served, workload: Workload, *, events: int, users: int, latency_events: int, backlog: int
) -> list[Metric]:
    emulator = PubSubEmulator()
    try:
        names = _queue(emulator)
        env = {
            **fs2split_env(up),
            "PUBSUB_EMULATOR_HOST": emulator.host,
            "FS2SPLIT_DELIVERY": "queue",
            "FS2SPLIT_PUBSUB_TOPIC": names[0],
            "FS2SPLIT_PUBSUB_SUBSCRIPTION": names[1],
        }
        webhook = Served("fs2split-queue", source=ROOT / "main.py", target="fs2split", env=env, ready_path="/healthz")
        drain = Served("fs2split-drain", source=ROOT / "main.py", target="drain", env=env, ready_path="/")
        try:
            webhook.wait_ready()
            _wait_listening(drain)
            return [
                *_calls_per_event(up, webhook, drain, workload, events, users),
                *_answer_times(up, webhook, direct, drain, workload, latency_events),
                *_backlog(up, emulator, names[0], drain, workload, backlog),
            ]
        finally:
            webhook.stop()
            drain.stop()
    finally:
        emulator.stop()


def _queue(emulator: PubSubEmulator) -> tuple[str, str]:
    topic, subscription = f"projects/{PROJECT}/topics/events", f"projects/{PROJECT}/subscriptions/drain"
    emulator.put(topic)
    emulator.put(subscription, {"topic": topic, "ackDeadlineSeconds": 120})
    return topic, subscription


def _wait_listening(function: Served, timeout_s: float = 30.0) -> None:
    # The drain answers GET with 405: any answer means it is up.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            requests.get(function.url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{function.name} did not start:\n{function.output()[-2000:]}")


def _drain(drain: Served) -> dict[str, object]:
    seconds, response = drain.post("/", b"")
    expect(response, 200, "drained")
    return {**response.json(), "seconds": seconds}


def _calls_per_event(
    up: FakeUpstream, webhook: Served, drain: Served, workload: Workload, events: int, users: int
) -> list[Metric]:
    stream = workload.stream(events, workload.users(users, up))
    for user in stream:
        expect(webhook.post("/fullstory", workload.body(user), JSON_HEADERS)[1], 200, "queued")
    up.reset()
    drained = _drain(drain)
    if len(up.fme_events()) != events:
        raise RuntimeError(f"queue mode: {len(up.fme_events())} of {events} queued events reached FME")
    posts, lookups, distinct = len(up.fme_posts()), len(up.calls("GET", "/v2/users/")), len(set(stream))
    return [
        Metric(
            "queue.fme_calls_per_event",
            f"queue mode: FME calls per event ({events} events drained in batches of 1,000)",
            posts / events,
            "",
            "<=",
            0.01,
            note=f"{posts} FME posts in {drained['seconds']:.2f} s; direct mode: 1",
        ),
        Metric(
            "queue.lookups_per_user",
            f"queue mode: identity lookups per distinct user ({distinct} users, one drain instance)",
            lookups / distinct,
            "",
            "<=",
            1.0,
            note=f"{lookups} lookups",
        ),
    ]


def _answer_times(
    up: FakeUpstream, webhook: Served, direct: Served, drain: Served, workload: Workload, events: int
) -> list[Metric]:
    ids = workload.users(max(2, events // 10), up)
    times: dict[str, list[float]] = {"queue_0": [], "queue_50": [], "direct_50": []}
    # Each run alone, back to back: interleaving with direct-mode calls would put 50 ms idle gaps before every
    # queue-mode call at 50 ms only, and an idle gap alone makes any local server ~1.5x slower (measured).
    for latency, key in ((0.0, "queue_0"), (SLOW_FME_S, "queue_50"), (SLOW_FME_S, "direct_50")):
        function, reason = (direct, "delivered") if key.startswith("direct") else (webhook, "queued")
        up.latency = latency
        try:
            for user in workload.stream(events, ids):
                seconds, response = function.post("/fullstory", workload.body(user), JSON_HEADERS)
                expect(response, 200, reason)
                times[key].append(seconds)
        finally:
            up.latency = 0.0
    _drain(drain)  # leave the subscription empty for the backlog
    q0, q50, d50 = (median(times[k]) * 1000 for k in ("queue_0", "queue_50", "direct_50"))
    return [
        Metric("queue.webhook_p50_0ms", "queue mode: webhook answer p50, FME at 0 ms", q0, " ms"),
        Metric("queue.webhook_p50_50ms", "queue mode: webhook answer p50, FME at 50 ms", q50, " ms"),
        Metric(
            "queue.webhook_50_vs_0",
            "queue mode: webhook p50 at 50 ms FME ÷ at 0 ms",
            q50 / q0,
            "×",
            "<=",
            1.2,
            note=f"{events} webhooks each",
        ),
        Metric(
            "queue.direct_vs_queue_50ms",
            "direct-mode p50 ÷ queue-mode p50, FME at 50 ms",
            d50 / q50,
            "×",
            ">=",
            5.0,
            note=f"direct {d50:.1f} ms",
        ),
    ]


def _backlog(
    up: FakeUpstream, emulator: PubSubEmulator, topic: str, drain: Served, workload: Workload, events: int
) -> list[Metric]:
    ids = workload.users(max(2, events // 100), up)
    bodies = [workload.body(user) for user in workload.stream(events, ids)]
    # Queued as the webhook queues them (same envelope), published straight to the emulator to save time.
    for start in range(0, len(bodies), 1000):
        encoded = [message.fullstory(b, hashlib.sha256(b).hexdigest()) for b in bodies[start : start + 1000]]
        emulator.post(
            f"{topic}:publish", {"messages": [{"data": base64.b64encode(e.encode()).decode()} for e in encoded]}
        )
    up.reset()
    drained = _drain(drain)
    if len(up.fme_events()) != events:
        raise RuntimeError(f"queue backlog: {len(up.fme_events())} of {events} events reached FME")
    return [
        Metric(
            "queue.drain_10k_s",
            f"queue mode: one drain run delivering {events:,} queued events",
            float(drained["seconds"]),  # type: ignore[arg-type]
            " s",
            "<",
            10.0,
            note=f"{len(up.fme_posts())} FME posts, loopback FME",
        )
    ]
