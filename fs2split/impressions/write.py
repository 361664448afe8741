"""Writing impressions to FullStory: single creates, or batch import jobs at volume, each impression remembered in
the dedup store only once FullStory accepted it. The one step the webhook and a queue drain share.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from fs2split import logs
from fs2split.clients.fullstory_api import FullStoryApi
from fs2split.clients.fullstory_batch import FullStoryBatchApi
from fs2split.clients.statuses import Verdict
from fs2split.clients.upstream import Reply, Upstream, remaining
from fs2split.config.settings import Settings
from fs2split.impressions import batch as batch_import
from fs2split.impressions import event as impressions
from fs2split.impressions.batch import BatchWrite, Job
from fs2split.impressions.event import Impression
from fs2split.stores.dedup import Claim, DedupStore

# While another request delivers the same impression, wait for its result only while this much time is left.
_CLAIM_FLOOR_S = 0.5
_CLAIM_POLL_S = 0.05


class Fate(StrEnum):
    DELIVERED = "delivered"  # FullStory accepted it just now
    DUPLICATE = "duplicate"  # FullStory accepted it earlier, within the dedup window
    UNDELIVERABLE = "undeliverable"  # FullStory refused it as malformed (4xx): retrying cannot help
    UNAVAILABLE = "unavailable"  # rate limited, down or unreachable after retries
    REJECTED = "rejected"  # FullStory refused our key (401/403) or answered nonsense (1xx/3xx)
    ELSEWHERE = "elsewhere"  # another request is still delivering it
    SKIPPED = "skipped"  # not attempted: FullStory had already failed for another item


@dataclass(frozen=True)
class Result:
    fate: Fate
    reply: Reply | None = None


@dataclass
class Written:
    """What became of each impression handed to ``write_impressions``, and the batch jobs that hold some."""

    results: list[Result]
    jobs: list[Job] = field(default_factory=list)


def write_impressions(
    unique: list[Impression], upstream: Upstream, api_key: str, seen: DedupStore, settings: Settings
) -> Written:
    """Write impressions (no two alike) to FullStory: the one step the webhook and a queue drain share.

    More than ``settings.impressions_batch_threshold`` new ones go as batch import jobs, fewer as single
    creates. Call it inside ``budget(...)``: every FullStory call, retries included, keeps to it.
    """
    if len(unique) > settings.impressions_batch_threshold:
        jobs_api = FullStoryBatchApi(upstream, settings.fullstory_api_url, api_key)
        done = batch_import.write(unique, jobs_api, seen, settings.impressions_batch_threshold)
        if done is not None:
            return _from_jobs(done, FullStoryApi(upstream, settings.fullstory_api_url, api_key), seen, settings)
    api = FullStoryApi(upstream, settings.fullstory_api_url, api_key)
    return Written(deliver_all(unique, api, seen, settings.impressions_concurrency))


def _from_jobs(done: BatchWrite, api: FullStoryApi, seen: DedupStore, settings: Settings) -> Written:
    results = [Result(Fate.DELIVERED)] * done.written
    results += [Result(Fate.DUPLICATE)] * done.duplicates + [Result(Fate.ELSEWHERE)] * done.elsewhere
    if done.failure is not None:
        fate = Fate.REJECTED if done.rejected else Fate.UNAVAILABLE
        results += [Result(fate, done.failure)] * done.unsent
        # FullStory is failing: the answer is not 200 anyway, and FME's retry sends these again.
        results += [Result(Fate.SKIPPED)] * len(done.refused)
    elif done.refused:
        count = len(done.refused)
        logs.emit(logging.WARNING, f"FullStory refused a batch job as invalid; writing its {count} impressions singly")
        results += deliver_all(done.refused, api, seen, settings.impressions_concurrency)
    return Written(results, done.jobs)


def deliver_all(unique: list[Impression], api: FullStoryApi, seen: DedupStore, concurrency: int) -> list[Result]:
    # Once FullStory is down, rate limiting or refusing our key, the items not started yet would fail the
    # same way: skip them and answer now, so FME's retry comes sooner and FullStory is not hammered.
    stop = threading.Event()

    def deliver(impression: Impression) -> Result:
        if stop.is_set():
            return Result(Fate.SKIPPED)
        key = impressions.dedup_key(impression)
        claim = _claim(seen, key, stop)
        if claim is Claim.DONE:
            return Result(Fate.DUPLICATE)
        if claim is Claim.IN_FLIGHT:
            return Result(Fate.ELSEWHERE if not stop.is_set() else Fate.SKIPPED)
        accepted = False
        try:
            reply = api.create_event(impressions.to_event(impression), impressions.idempotency_key)
            accepted = reply.ok
        finally:
            if accepted:
                seen.done(key)
            else:
                seen.release(key)
        fate = _fate(reply)
        if fate in (Fate.UNAVAILABLE, Fate.REJECTED) and reply.status not in impressions.RETRY_LATER_STATUSES:
            stop.set()
        return Result(fate, reply)

    workers = min(concurrency, len(unique))
    if workers <= 1:
        return [deliver(impression) for impression in unique]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fs2split-impressions") as pool:
        # The time budget is a context variable: each task runs in a copy of this thread's context.
        futures = [pool.submit(contextvars.copy_context().run, deliver, impression) for impression in unique]
        return [future.result() for future in futures]


def _claim(seen: DedupStore, key: str, stop: threading.Event) -> Claim:
    """Claim an impression; if another request is delivering it, wait for its result while time is left."""
    while True:
        claim = seen.claim(key)
        if claim is not Claim.IN_FLIGHT:
            return claim
        left = remaining()
        if stop.is_set() or left is None or left < _CLAIM_FLOOR_S + _CLAIM_POLL_S:
            return claim
        time.sleep(_CLAIM_POLL_S)


_FATES = {
    Verdict.ACCEPTED: Fate.DELIVERED,
    Verdict.RETRY_LATER: Fate.UNAVAILABLE,
    Verdict.OUR_SETUP: Fate.REJECTED,
    Verdict.REFUSED: Fate.UNDELIVERABLE,
}


def _fate(reply: Reply) -> Fate:
    return _FATES[reply.verdict]
