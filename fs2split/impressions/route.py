"""``POST /split/impressions``: FME's outgoing impressions webhook becomes FullStory ``split_evaluation`` events.

token → size → inflate → parse → validate → deduplicate → deliver concurrently → outcome.

FME counts only an exact 200 as success; anything else is retried once, 300 ms later, and then the batch is
gone. So 200 means every impression in the batch is in FullStory: written now, written earlier within the
dedup window, or impossible to deliver (no key, no flag, refused by FullStory as malformed), which is counted
and logged. Each impression is remembered only once FullStory accepted it, so FME's retry re-sends only
what failed.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fs2split import logs
from fs2split.clients.fullstory_api import FullStoryApi
from fs2split.clients.fullstory_batch import FullStoryBatchApi
from fs2split.clients.statuses import Verdict
from fs2split.clients.upstream import Reply, Upstream, budget, remaining
from fs2split.config.keys import FULLSTORY_API_KEY, SPLIT_IMPRESSIONS_TOKEN, SecretUnavailable
from fs2split.config.settings import Settings
from fs2split.http_types import Request
from fs2split.impressions import batch as batch_import
from fs2split.impressions import event as impressions
from fs2split.impressions import items as items_json
from fs2split.impressions.batch import BatchWrite, Job
from fs2split.impressions.event import Impression, Problem
from fs2split.instance import Instance
from fs2split.outcome import IN_PROGRESS_RETRY_AFTER_S, Outcome, Reason
from fs2split.stores.dedup import Claim, DedupStore

_GZIP_MAGIC = b"\x1f\x8b"
# While another request delivers the same impression, wait for its result only while this much time is left.
_CLAIM_FLOOR_S = 0.5
_CLAIM_POLL_S = 0.05
_LOGGED_EXAMPLES = 10


class _Fate(StrEnum):
    DELIVERED = "delivered"  # FullStory accepted it just now
    DUPLICATE = "duplicate"  # FullStory accepted it earlier, within the dedup window
    UNDELIVERABLE = "undeliverable"  # FullStory refused it as malformed (4xx): retrying cannot help
    UNAVAILABLE = "unavailable"  # rate limited, down or unreachable after retries
    REJECTED = "rejected"  # FullStory refused our key (401/403) or answered nonsense (1xx/3xx)
    ELSEWHERE = "elsewhere"  # another request is still delivering it
    SKIPPED = "skipped"  # not attempted: FullStory had already failed for another item


@dataclass(frozen=True)
class _Result:
    fate: _Fate
    reply: Reply | None = None


@dataclass
class _Batch:
    """The webhook's items, split into what to send and what cannot be sent."""

    received: int
    unique: list[Impression] = field(default_factory=list)
    repeats: int = 0  # the same (key, flag, treatment, change number) more than once in this body
    problems: Counter[str] = field(default_factory=Counter)
    problem_items: list[int] = field(default_factory=list)


def handle(request: Request, instance: Instance) -> Outcome:
    settings = instance.settings
    if instance.settings_error:
        return Outcome(Reason.SETTINGS_INVALID, instance.settings_error)
    try:
        refused = _check_token(request, instance)
    except SecretUnavailable as error:
        return Outcome(Reason.SECRET_UNAVAILABLE, str(error))
    if refused:
        return refused
    body = _inflate(request.body, settings)
    if isinstance(body, Outcome):
        return body
    items = _parse(body, settings.impressions_max_items)
    if isinstance(items, Outcome):
        return items
    batch = _prepare(items)
    del body, items  # tens of MB for a large webhook: free them before delivery holds the events too
    if batch.problems:
        logs.emit(
            logging.WARNING,
            f"{sum(batch.problems.values())} impressions can never be delivered (see problems); skipped",
            problems=dict(batch.problems),
            items=batch.problem_items,
        )
    log: dict[str, Any] = {
        "gzip": request.body.startswith(_GZIP_MAGIC),
        "impressions": batch.received,
        "invalid": sum(batch.problems.values()),
    }
    if settings.force_dry_run or instance.keyless:
        why = "FS2SPLIT_DRY_RUN is set" if settings.force_dry_run else "no key is set"
        return _dry_run(batch, log, why)
    try:
        api_key = instance.keys.get(FULLSTORY_API_KEY)
    except SecretUnavailable as error:
        return Outcome(Reason.SECRET_UNAVAILABLE, str(error), log=log)
    if api_key is None:
        return Outcome(
            Reason.FULLSTORY_KEY_MISSING,
            "FULLSTORY_API_KEY is not set, so no impression can be written to FullStory; nothing acknowledged",
            log=log,
        )
    if not batch.unique:
        return _outcome(batch, Written([]), log)
    if settings.delivery == "queue":
        # Checked, not delivered: the drain writes them (fs2split/queue/), imported only in queue mode.
        from fs2split.queue import enqueue

        return enqueue.impressions(batch.unique, instance, log)
    with budget(settings.retry_budget_s):
        written = write_impressions(batch.unique, instance.upstream, api_key, instance.impressions_seen, settings)
    return _outcome(batch, written, log)


@dataclass
class Written:
    """What became of each impression handed to ``write_impressions``, and the batch jobs that hold some."""

    results: list[_Result]
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
    return Written(_deliver_all(unique, api, seen, settings.impressions_concurrency))


def _from_jobs(done: BatchWrite, api: FullStoryApi, seen: DedupStore, settings: Settings) -> Written:
    results = [_Result(_Fate.DELIVERED)] * done.written
    results += [_Result(_Fate.DUPLICATE)] * done.duplicates + [_Result(_Fate.ELSEWHERE)] * done.elsewhere
    if done.failure is not None:
        fate = _Fate.REJECTED if done.rejected else _Fate.UNAVAILABLE
        results += [_Result(fate, done.failure)] * done.unsent
        # FullStory is failing: the answer is not 200 anyway, and FME's retry sends these again.
        results += [_Result(_Fate.SKIPPED)] * len(done.refused)
    elif done.refused:
        count = len(done.refused)
        logs.emit(logging.WARNING, f"FullStory refused a batch job as invalid; writing its {count} impressions singly")
        results += _deliver_all(done.refused, api, seen, settings.impressions_concurrency)
    return Written(results, done.jobs)


def _check_token(request: Request, instance: Instance) -> Outcome | None:
    expected = instance.keys.get(SPLIT_IMPRESSIONS_TOKEN)
    if expected is None:
        return None
    given = request.query.get("token") or ""
    # Bytes, so a hostile non-ASCII token is just unequal (compare_digest refuses non-ASCII str).
    if hmac.compare_digest(_bytes(given), _bytes(expected)):
        return None
    why = "is missing" if not given else "does not match SPLIT_IMPRESSIONS_TOKEN"
    return Outcome(Reason.TOKEN_INVALID, f"the token query parameter {why}")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")


def _inflate(body: bytes, settings: Settings) -> bytes | bytearray | Outcome:
    """The JSON bytes: the body itself, or its gzip content (FME gzips; a header may or may not say so)."""
    if len(body) > settings.impressions_max_body_bytes:
        return Outcome(Reason.PAYLOAD_TOO_LARGE, f"the body is larger than {settings.impressions_max_body_bytes} bytes")
    if not body.startswith(_GZIP_MAGIC):
        return body
    cap = settings.impressions_max_inflated_bytes
    too_large = Outcome(Reason.PAYLOAD_TOO_LARGE, f"the body inflates to more than {cap} bytes")
    out = bytearray()
    pending = body
    # max_length bounds every step, so a gzip bomb stops at cap + 1 bytes instead of inflating fully.
    try:
        while pending:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while True:
                out += inflater.decompress(pending, cap + 1 - len(out))
                if len(out) > cap:
                    return too_large
                pending = inflater.unconsumed_tail
                if inflater.eof or not pending:
                    break
            if not inflater.eof:
                return Outcome(Reason.INVALID_JSON, "the gzip body is truncated")
            # Concatenated gzip members are one stream (RFC 1952); trailing zero padding is harmless.
            pending = inflater.unused_data
            if pending and not pending.startswith(_GZIP_MAGIC):
                if pending.strip(b"\x00"):
                    return Outcome(Reason.INVALID_JSON, "the gzip body has trailing bytes that are not gzip")
                pending = b""
    except zlib.error:
        return Outcome(Reason.INVALID_JSON, "the body starts like gzip but does not decompress")
    return out  # not bytes(out): a second copy of up to 64 MiB


_REFUSALS = {
    items_json.Kind.TOO_MANY: Reason.PAYLOAD_TOO_LARGE,
    items_json.Kind.NOT_JSON: Reason.INVALID_JSON,
    items_json.Kind.NOT_AN_ARRAY: Reason.NOT_A_WEBHOOK,
}


def _parse(body: bytes | bytearray, max_items: int) -> list[Any] | Outcome:
    parsed = items_json.parse_items(body, max_items)
    if isinstance(parsed, items_json.Refusal):
        return Outcome(_REFUSALS[parsed.kind], parsed.message)
    return parsed


def _prepare(items: list[Any]) -> _Batch:
    batch = _Batch(received=len(items))
    seen: set[str] = set()
    for index, item in enumerate(items):
        impression = impressions.from_webhook(item)
        if isinstance(impression, Problem):
            batch.problems[impression.value] += 1
            if len(batch.problem_items) < _LOGGED_EXAMPLES:
                batch.problem_items.append(index)
            continue
        key = impressions.dedup_key(impression)
        if key in seen:
            batch.repeats += 1
        else:
            seen.add(key)
            batch.unique.append(impression)
    return batch


def _deliver_all(unique: list[Impression], api: FullStoryApi, seen: DedupStore, concurrency: int) -> list[_Result]:
    # Once FullStory is down, rate limiting or refusing our key, the items not started yet would fail the
    # same way: skip them and answer now, so FME's retry comes sooner and FullStory is not hammered.
    stop = threading.Event()

    def deliver(impression: Impression) -> _Result:
        if stop.is_set():
            return _Result(_Fate.SKIPPED)
        key = impressions.dedup_key(impression)
        claim = _claim(seen, key, stop)
        if claim is Claim.DONE:
            return _Result(_Fate.DUPLICATE)
        if claim is Claim.IN_FLIGHT:
            return _Result(_Fate.ELSEWHERE if not stop.is_set() else _Fate.SKIPPED)
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
        if fate in (_Fate.UNAVAILABLE, _Fate.REJECTED) and reply.status not in impressions.RETRY_LATER_STATUSES:
            stop.set()
        return _Result(fate, reply)

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
    Verdict.ACCEPTED: _Fate.DELIVERED,
    Verdict.RETRY_LATER: _Fate.UNAVAILABLE,
    Verdict.OUR_SETUP: _Fate.REJECTED,
    Verdict.REFUSED: _Fate.UNDELIVERABLE,
}


def _fate(reply: Reply) -> _Fate:
    return _FATES[reply.verdict]


def _outcome(batch: _Batch, written: Written, log: dict[str, Any]) -> Outcome:
    results = written.results
    fates = Counter(result.fate for result in results)
    invalid = sum(batch.problems.values())
    refused = [r.reply.describe() for r in results if r.fate is _Fate.UNDELIVERABLE and r.reply is not None]
    if refused:
        logs.emit(
            logging.WARNING,
            f"FullStory refused {len(refused)} impressions as invalid; skipped",
            fullstory_messages=sorted(set(refused))[:_LOGGED_EXAMPLES],
        )
    counts = {
        "impressions": batch.received,
        "delivered": fates[_Fate.DELIVERED],
        "duplicates": fates[_Fate.DUPLICATE] + batch.repeats,
        "undeliverable": invalid + len(refused),
        "not_delivered": sum(fates[f] for f in (_Fate.UNAVAILABLE, _Fate.REJECTED, _Fate.ELSEWHERE, _Fate.SKIPPED)),
    }
    if batch.problems:
        counts["problems"] = dict(batch.problems)
    # events_sent: the same field (and metric) as the FullStory route's, here events written to FullStory.
    log = {**log, **counts, "events_sent": counts["delivered"]}
    if written.jobs:
        # Job ids and sizes in the response and the log line; `python -m fs2split impressions-jobs --log`
        # finds them under "fullstory_jobs".
        counts["jobs"] = [{"id": job.id, "impressions": job.impressions} for job in written.jobs]
        log["fullstory_jobs"] = counts["jobs"]
    failed = [r.reply for r in results if r.fate in (_Fate.UNAVAILABLE, _Fate.REJECTED) and r.reply is not None]
    if failed:
        log["fullstory_status"] = failed[0].status
    rejected = [r.reply for r in results if r.fate is _Fate.REJECTED and r.reply is not None]
    if rejected:
        return Outcome(
            Reason.FULLSTORY_REJECTED,
            f"FullStory refused the request: {rejected[0].describe()}; check FULLSTORY_API_KEY and FULLSTORY_API_URL",
            body=counts,
            log=log,
        )
    if fates[_Fate.UNAVAILABLE] or fates[_Fate.SKIPPED]:
        unavailable = [r.reply for r in results if r.fate is _Fate.UNAVAILABLE and r.reply is not None]
        waits = [reply.retry_after for reply in unavailable if reply.retry_after is not None]
        why = unavailable[0].describe() if unavailable else "no answer"
        return Outcome(
            Reason.FULLSTORY_UNAVAILABLE,
            f"{counts['not_delivered']} of {batch.received} impressions not delivered yet: {why}",
            body=counts,
            log=log,
            retry_after=max(waits) if waits else None,
        )
    if fates[_Fate.ELSEWHERE]:
        return Outcome(
            Reason.IN_PROGRESS,
            f"{fates[_Fate.ELSEWHERE]} impressions are still being delivered by another request; retry later",
            body=counts,
            log=log,
            retry_after=IN_PROGRESS_RETRY_AFTER_S,
        )
    if counts["delivered"]:
        reason, message = Reason.DELIVERED, f"{counts['delivered']} impressions delivered to FullStory"
        if written.jobs:
            in_jobs = sum(job.impressions for job in written.jobs)
            message += f" ({in_jobs} in {len(written.jobs)} batch import jobs, imported by FullStory later)"
    elif counts["duplicates"]:
        reason, message = Reason.DUPLICATE, "every impression was already delivered; nothing sent again"
    elif refused:
        reason, message = Reason.UNDELIVERABLE, f"FullStory refused every impression as invalid: {refused[0]}"
    elif batch.problems:
        reason, message = Reason.IGNORED, f"no deliverable impression in the body: {_problems(batch)}"
    else:
        reason, message = Reason.IGNORED, "no impression in the body"
    if counts["duplicates"] and reason is Reason.DELIVERED:
        message += f"; {counts['duplicates']} duplicates not sent again"
    if counts["undeliverable"] and reason not in (Reason.UNDELIVERABLE, Reason.IGNORED):
        message += f"; {counts['undeliverable']} undeliverable, skipped"
    return Outcome(reason, message, body=counts, log=log)


def _problems(batch: _Batch) -> str:
    """Why items were skipped, with the field names FME uses, since a guessed body is the usual cause."""
    counted = ", ".join(f"{count} {problem}" for problem, count in sorted(batch.problems.items()))
    return f"{counted} (each item needs FME's fields key, split and treatment; see examples/bodies/)"


def _dry_run(batch: _Batch, log: dict[str, Any], why: str) -> Outcome:
    events = [impressions.to_event(impression) for impression in batch.unique]
    logs.emit(logging.INFO, "dry run: would send to FullStory", events=len(events))
    return Outcome(
        Reason.DRY_RUN,
        f"dry run ({why}): nothing was sent to FullStory",
        body={
            "dry_run": True,
            "impressions": batch.received,
            "duplicates": batch.repeats,
            "undeliverable": sum(batch.problems.values()),
            **({"problems": dict(batch.problems)} if batch.problems else {}),
            "events": events[:_LOGGED_EXAMPLES],
        },
        log={**log, "events_sent": 0},
    )
