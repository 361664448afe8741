"""Listener cost: what ``FullStoryImpressionListener`` adds to the FME SDK's ``get_treatment``.

Two factories of the real ``splitio_client`` SDK in normal (not localhost) mode poll the same loopback
FME backend, one with the listener and one without. They evaluate the same keys in batches, taking
turns (and swapping who goes first), and the medians of their per-call times are compared.

The stream is an application's: users drawn Zipf-like from a pool, each evaluated about ten times per
flag, so about one evaluation in ten is new to the listener and is sent to FullStory by its background
threads, in this process, as in production. The worst case (every evaluation new) is reported beside it.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from bench.common import FULLSTORY_KEY, ROOT, SDK_KEY, Metric, clean_env, median
from bench.upstream_process import FLAGS

EVALUATIONS_PER_USER = 10


def _factory(sdk_urls: dict[str, str], listener: Any | None) -> Any:
    from splitio import get_factory  # imported here: the rest of the bench never needs the SDK

    config: dict[str, Any] = {"streamingEnabled": False, "impressionsMode": "debug", "IPAddressesEnabled": False}
    if listener is not None:
        config["impressionListener"] = listener
    factory = get_factory(SDK_KEY, **sdk_urls, config=config)
    factory.block_until_ready(5)
    return factory


def _time_batch(client: Any, calls: Sequence[tuple[str, str]]) -> float:
    """Seconds per ``get_treatment`` call over the batch."""
    get_treatment = client.get_treatment
    started = time.perf_counter()
    for key, flag in calls:
        get_treatment(key, flag)
    return (time.perf_counter() - started) / len(calls)


def _compare(plain: Any, listened: Any, batches: list[list[tuple[str, str]]]) -> tuple[float, float]:
    without: list[float] = []
    with_listener: list[float] = []
    for number, calls in enumerate(batches):
        # Swap who goes first each batch: whatever the first leaves behind (GC, SDK flushes) is shared.
        if number % 2:
            with_listener.append(_time_batch(listened, calls))
            without.append(_time_batch(plain, calls))
        else:
            without.append(_time_batch(plain, calls))
            with_listener.append(_time_batch(listened, calls))
    return median(without), median(with_listener)


def _stream(rng: random.Random, prefix: str, calls: int, users: int, skew: float) -> list[tuple[str, str]]:
    keys = [f"{prefix}-{n:06d}" for n in range(users)]
    weights = [1 / (rank + 1) ** skew for rank in range(users)]
    return [(key, FLAGS[n % len(FLAGS)]) for n, key in enumerate(rng.choices(keys, weights, k=calls))]


def _chunks(calls: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    return [calls[i : i + size] for i in range(0, len(calls), size)]


def run(batches: int, batch_size: int, seed: int = 20240601, skew: float = 1.1) -> list[Metric]:
    from fs2split.impressions.listener import FullStoryImpressionListener

    logging.getLogger("splitio").setLevel(logging.CRITICAL)  # e.g. "factory already exists for this key"
    upstream = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream_process"],
        cwd=ROOT,
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert upstream.stdin is not None
    assert upstream.stdout is not None
    try:
        sdk_urls = json.loads(upstream.stdout.readline())["sdk_urls"]
        url = sdk_urls["events_api_base_url"].removesuffix("/api")
        listener = FullStoryImpressionListener(FULLSTORY_KEY, url, environment_name="Production", env={})
        plain, listened = _factory(sdk_urls, None), _factory(sdk_urls, listener)
        try:
            rng = random.Random(seed)
            calls = batches * batch_size
            users = max(1, calls // (EVALUATIONS_PER_USER * len(FLAGS)))
            warm = _stream(rng, "warm", batch_size, batch_size, skew)
            _compare(plain.client(), listened.client(), [warm])
            before = listener.stats()
            realistic = _stream(rng, "user", calls, users, skew)
            base, ours = _compare(plain.client(), listened.client(), _chunks(realistic, batch_size))
            after = listener.stats()
            new_share = (after["queued"] - before["queued"]) / (after["received"] - before["received"])
            # Worst case: no evaluation repeats, so every one is queued and sent.
            fresh = [(f"fresh-{n:07d}", FLAGS[n % len(FLAGS)]) for n in range(calls // 4)]
            worst_base, worst = _compare(plain.client(), listened.client(), _chunks(fresh, batch_size))
            sent_in_time = listener.flush(30)
            stats = listener.stats()
        finally:
            listener.close(timeout_s=5)
            for factory in (plain, listened):
                destroyed = threading.Event()
                factory.destroy(destroyed)
                destroyed.wait(5)
        upstream.stdin.close()
        stored = json.loads(upstream.stdout.readline())["fullstory_events"]
    finally:
        if upstream.poll() is None:
            upstream.kill()
        upstream.wait(timeout=10)
    if not sent_in_time or stats["sent"] != stats["queued"] or stored != stats["sent"]:
        raise RuntimeError(f"listener: sent {stats} but FullStory stored {stored}: the cost measured is not real")
    shape = f"{batches} batches of {batch_size}, {users} users, Zipf {skew}"
    return [
        Metric(
            "listener.get_treatment_us",
            "get_treatment without listener: median per call",
            base * 1e6,
            " µs",
            note=shape,
        ),
        Metric(
            "listener.with_listener_us", "get_treatment with listener: median per call", ours * 1e6, " µs", note=shape
        ),
        Metric(
            "listener.ratio",
            "listener: with / without",
            ours / base,
            "×",
            "<=",
            1.25,
            note=f"{new_share:.0%} of evaluations new to the listener, sent to FullStory in the background",
        ),
        Metric(
            "listener.worst_ratio",
            "listener, every evaluation new (worst case): with / without",
            worst / worst_base,
            "×",
            note=f"{len(fresh)} evaluations, all queued and sent",
        ),
        Metric("listener.sent", "split_evaluation events the listener got into FullStory", float(stats["sent"]), ""),
    ]
