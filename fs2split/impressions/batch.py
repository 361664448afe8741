"""Impressions written through FullStory's batch import: one job per at most 50,000 impressions.

Each job's requests are the same ``split_evaluation`` events the single path sends, and its
``Idempotency-Key`` is the digest of the job's exact body, so FME's retry of the same webhook finds the job
already made instead of making a second one. An impression is remembered (dedup) only once its job was
accepted; a job that could not be created leaves its impressions unclaimed for FME's retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from fs2split.clients.fullstory_batch import MAX_REQUESTS, FullStoryBatchApi
from fs2split.clients.upstream import Reply
from fs2split.impressions import event as impressions
from fs2split.impressions.event import Impression
from fs2split.stores.dedup import Claim, DedupStore

# FullStory answers to a job that mean "this content, never": the job's impressions go one by one instead,
# so that one bad impression does not refuse the rest. 401/403 (our key) and "not now" answers are not here.
_NOT_NOW = impressions.RETRY_LATER_STATUSES | {401, 403}


@dataclass(frozen=True)
class Job:
    id: str
    impressions: int


@dataclass
class BatchWrite:
    """What became of the impressions handed to ``write``."""

    jobs: list[Job] = field(default_factory=list)
    duplicates: int = 0  # written earlier, within the dedup window
    elsewhere: int = 0  # another request is writing them right now
    refused: list[Impression] = field(default_factory=list)  # in a job refused as invalid: write one by one
    unsent: int = 0  # not written: a job could not be created (see failure)
    failure: Reply | None = None  # the answer that stopped a job
    rejected: bool = False  # failure is FullStory refusing our key (401/403) rather than "not now"

    @property
    def written(self) -> int:
        return sum(job.impressions for job in self.jobs)


def write(unique: list[Impression], api: FullStoryBatchApi, seen: DedupStore, threshold: int) -> BatchWrite | None:
    """Write ``unique`` (no two alike) as batch jobs, or return None when no more than ``threshold`` of them
    are new: then the single path is cheaper, and nothing stays claimed."""
    result = BatchWrite()
    claimed: list[tuple[Impression, str]] = []
    for impression in unique:
        key = impressions.dedup_key(impression)
        claim = seen.claim(key)
        if claim is Claim.NEW:
            claimed.append((impression, key))
        elif claim is Claim.DONE:
            result.duplicates += 1
        else:
            result.elsewhere += 1
    if len(claimed) <= threshold:
        for _, key in claimed:
            seen.release(key)
        return None
    for chunk in _chunks(claimed, MAX_REQUESTS):
        if result.failure is not None:
            # FullStory is down or refusing our key: the next job would fare the same. FME's retry sends them.
            _release(seen, chunk)
            result.unsent += len(chunk)
            continue
        created = api.create_job((impressions.to_event(i) for i, _ in chunk), impressions.idempotency_key)
        if created.job_id is not None:
            for _, key in chunk:
                seen.done(key)
            result.jobs.append(Job(created.job_id, len(chunk)))
            continue
        _release(seen, chunk)
        reply = created.reply
        if reply.ok:
            # A 2xx without a job id is not a job, but FullStory may hold one: retrying the same body (same
            # Idempotency-Key) is safe, so it is "not now", not "never".
            reply = Reply(0, error=f"FullStory answered HTTP {reply.status} without a job id")
        if not reply.transient and reply.status >= 400 and reply.status not in _NOT_NOW:
            result.refused.extend(i for i, _ in chunk)
            continue
        result.unsent += len(chunk)
        result.failure = reply
        # Our key refused, or an answer that is no answer (1xx/3xx): as on the single path, 502.
        result.rejected = reply.status in (401, 403) or 0 < reply.status < 200 or 300 <= reply.status < 400
    return result


def _chunks(items: list[tuple[Impression, str]], size: int) -> Iterator[list[tuple[Impression, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _release(seen: DedupStore, chunk: list[tuple[Impression, str]]) -> None:
    for _, key in chunk:
        seen.release(key)
