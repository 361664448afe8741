"""``POST /split/impressions``: FME's outgoing impressions webhook becomes FullStory ``split_evaluation`` events.

token → size → inflate → parse → validate → write (`fs2split.impressions.write`: deduplicate, deliver) → outcome.

FME counts only an exact 200 as success; anything else is retried once, 300 ms later, and then the batch is
gone. So 200 means every impression in the batch is in FullStory: written now, written earlier within the
dedup window, or impossible to deliver (no key, no flag, refused by FullStory as malformed), which is counted
and logged. Each impression is remembered only once FullStory accepted it, so FME's retry re-sends only
what failed.
"""

from __future__ import annotations

import hmac
import logging
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fs2split import logs
from fs2split.clients.upstream import budget
from fs2split.config.keys import FULLSTORY_API_KEY, SPLIT_IMPRESSIONS_TOKEN, SecretUnavailable
from fs2split.config.settings import Settings
from fs2split.http_types import Request
from fs2split.impressions import event as impressions
from fs2split.impressions import items as items_json
from fs2split.impressions.event import Impression, Problem
from fs2split.impressions.write import Fate, Written, write_impressions
from fs2split.instance import Instance
from fs2split.outcome import IN_PROGRESS_RETRY_AFTER_S, Outcome, Reason

_GZIP_MAGIC = b"\x1f\x8b"
_LOGGED_EXAMPLES = 10


@dataclass
class Batch:
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
        return outcome_of(batch, Written([]), log)
    if settings.delivery == "queue":
        # Checked, not delivered: the drain writes them (fs2split/queue/), imported only in queue mode.
        from fs2split.queue import enqueue

        return enqueue.impressions(batch.unique, instance, log)
    with budget(settings.retry_budget_s):
        written = write_impressions(batch.unique, instance.upstream, api_key, instance.impressions_seen, settings)
    return outcome_of(batch, written, log)


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


def _prepare(items: list[Any]) -> Batch:
    batch = Batch(received=len(items))
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


def outcome_of(batch: Batch, written: Written, log: dict[str, Any]) -> Outcome:
    results = written.results
    fates = Counter(result.fate for result in results)
    invalid = sum(batch.problems.values())
    refused = [r.reply.describe() for r in results if r.fate is Fate.UNDELIVERABLE and r.reply is not None]
    if refused:
        logs.emit(
            logging.WARNING,
            f"FullStory refused {len(refused)} impressions as invalid; skipped",
            fullstory_messages=sorted(set(refused))[:_LOGGED_EXAMPLES],
        )
    counts = {
        "impressions": batch.received,
        "delivered": fates[Fate.DELIVERED],
        "duplicates": fates[Fate.DUPLICATE] + batch.repeats,
        "undeliverable": invalid + len(refused),
        "not_delivered": sum(fates[f] for f in (Fate.UNAVAILABLE, Fate.REJECTED, Fate.ELSEWHERE, Fate.SKIPPED)),
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
    failed = [r.reply for r in results if r.fate in (Fate.UNAVAILABLE, Fate.REJECTED) and r.reply is not None]
    if failed:
        log["fullstory_status"] = failed[0].status
    rejected = [r.reply for r in results if r.fate is Fate.REJECTED and r.reply is not None]
    if rejected:
        return Outcome(
            Reason.FULLSTORY_REJECTED,
            f"FullStory refused the request: {rejected[0].describe()}; check FULLSTORY_API_KEY and FULLSTORY_API_URL",
            body=counts,
            log=log,
        )
    if fates[Fate.UNAVAILABLE] or fates[Fate.SKIPPED]:
        unavailable = [r.reply for r in results if r.fate is Fate.UNAVAILABLE and r.reply is not None]
        waits = [reply.retry_after for reply in unavailable if reply.retry_after is not None]
        why = unavailable[0].describe() if unavailable else "no answer"
        return Outcome(
            Reason.FULLSTORY_UNAVAILABLE,
            f"{counts['not_delivered']} of {batch.received} impressions not delivered yet: {why}",
            body=counts,
            log=log,
            retry_after=max(waits) if waits else None,
        )
    if fates[Fate.ELSEWHERE]:
        return Outcome(
            Reason.IN_PROGRESS,
            f"{fates[Fate.ELSEWHERE]} impressions are still being delivered by another request; retry later",
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


def _problems(batch: Batch) -> str:
    """Why items were skipped, with the field names FME uses, since a guessed body is the usual cause."""
    counted = ", ".join(f"{count} {problem}" for problem, count in sorted(batch.problems.items()))
    return f"{counted} (each item needs FME's fields key, split and treatment; see examples/bodies/)"


def _dry_run(batch: Batch, log: dict[str, Any], why: str) -> Outcome:
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
