"""The drain: deliver a batch of queue messages, and say which to acknowledge, retry later or dead-letter.

FullStory events go through the direct-mode steps (parse, map, identify: ``events.route.prepare``), deduplicated
by the instance's dedup store, and reach FME in bulk (``fme_bulk``). Impressions go through ``impressions_writer``.
The two directions run side by side, so a slow or failing FME never holds back impressions, nor FullStory events.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fs2split import logs
from fs2split.clients.fme_api import FmeApi
from fs2split.clients.upstream import budget
from fs2split.config.keys import FULLSTORY_API_KEY, SPLIT_API_KEY, SecretUnavailable
from fs2split.events import route as events_route
from fs2split.events.payload import parse
from fs2split.instance import Instance
from fs2split.outcome import Outcome, Reason
from fs2split.queue import fme_bulk, impressions_writer, message
from fs2split.queue.message import FullStoryMessage, ImpressionsMessage
from fs2split.stores.dedup import Claim, DedupUnavailable


@dataclass(frozen=True)
class Received:
    handle: str  # what the queue needs to settle it: SQS messageId, Pub/Sub ackId
    data: bytes | None  # None: the queue's own encoding of it is broken
    age_s: float | None = None


@dataclass
class Verdict:
    acked: list[str] = field(default_factory=list)  # delivered, already delivered, or dropped on purpose
    retry: list[str] = field(default_factory=list)  # not delivered yet (or refused): back after the backoff
    dead: list[str] = field(default_factory=list)  # unreadable: back at once, on its way to the dead-letter queue


@dataclass
class Tally:
    """The drain run's log line, summed over its batches (the names are read by the operations dashboards)."""

    messages: int = 0
    events_sent: int = 0  # FME events accepted plus impressions written to FullStory
    fme_events_sent: int = 0
    impressions_sent: int = 0
    failed: int = 0  # messages not acknowledged: retried later or dead-lettered
    fme_calls: int = 0
    fullstory_lookups: int = 0
    oldest_message_age_s: float | None = None
    failures: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    def fields(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "events_sent": self.events_sent,
            "fme_events_sent": self.fme_events_sent,
            "impressions_sent": self.impressions_sent,
            "failed": self.failed,
            "fme_calls": self.fme_calls,
            "fme_failures": sum(n for r, n in self.failures.items() if r.startswith("fme_")),
            "fullstory_calls": self.fullstory_lookups,
            "fullstory_failures": sum(n for r, n in self.failures.items() if r.startswith("fullstory_")),
            "failures": dict(self.failures),
            "outcomes": dict(self.outcomes),
            "oldest_message_age_s": self.oldest_message_age_s,
        }


def deliver(batch: Sequence[Received], instance: Instance, tally: Tally, *, seconds: float) -> Verdict:
    """Deliver what can be delivered within ``seconds``; never raises for a message's content."""
    verdict = Verdict()
    fullstory: list[tuple[str, FullStoryMessage]] = []
    impressions: list[tuple[str, ImpressionsMessage]] = []
    tally.messages += len(batch)
    for received in batch:
        if received.age_s is not None:
            tally.oldest_message_age_s = max(tally.oldest_message_age_s or 0.0, round(received.age_s, 3))
        read = message.read(received.data)
        if isinstance(read, str):
            logs.emit(
                logging.ERROR, f"unreadable queue message, dead-lettered: {read}", message_handle=received.handle[:80]
            )
            tally.failures["unreadable"] += 1
            verdict.dead.append(received.handle)
        elif isinstance(read, FullStoryMessage):
            fullstory.append((received.handle, read))
        else:
            impressions.append((received.handle, read))
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fs2split-drain") as pool:
        jobs = [
            pool.submit(contextvars.copy_context().run, _events, fullstory, instance, tally, verdict, deadline),
            pool.submit(contextvars.copy_context().run, _impressions, impressions, instance, tally, verdict, deadline),
        ]
        for job in jobs:
            job.result()
    tally.failed += len(verdict.retry) + len(verdict.dead)
    return verdict


def _events(
    items: list[tuple[str, FullStoryMessage]], instance: Instance, tally: Tally, verdict: Verdict, deadline: float
) -> None:
    if not items:
        return
    sdk_key = _key(instance, SPLIT_API_KEY) if not instance.dry_run else None
    if not sdk_key:
        # Dry run or no key: send nothing and acknowledge nothing; the messages wait in the queue.
        tally.failures["dry_run" if instance.dry_run else "secret_unavailable"] += len(items)
        verdict.retry.extend(handle for handle, _ in items)
        return
    groups: dict[str, list[str]] = {}  # dedup key -> handles: a redelivered copy follows its first
    bodies: dict[str, bytes] = {}
    for handle, item in items:
        groups.setdefault(item.key, []).append(handle)
        bodies.setdefault(item.key, item.body)
    pending: list[tuple[str, dict[str, Any]]] = []
    fullstory_down = False
    for key, handles in groups.items():
        try:
            # Claimed long before the post: the lease covers the rest of this run, not one webhook's budget.
            claim = instance.dedup.claim(key, lease_s=max(0.0, deadline - time.monotonic()) + 5.0)
        except DedupUnavailable:  # FS2SPLIT_DEDUP_ON_STORE_ERROR=refuse: the queue redelivers it later
            verdict.retry.extend(handles)
            tally.failures[Reason.DEDUP_UNAVAILABLE.value] += len(handles)
            continue
        if claim is not Claim.NEW:
            settle = verdict.acked if claim is Claim.DONE else verdict.retry
            settle.extend(handles)
            tally.outcomes[Reason.DUPLICATE.value if claim is Claim.DONE else Reason.IN_PROGRESS.value] += len(handles)
            continue
        # Once FullStory failed this run, later lookups are not even tried (an exhausted budget sends nothing);
        # events whose key needs no lookup still go through.
        with budget(0.0 if fullstory_down else max(0.0, deadline - time.monotonic())):
            prepared = _prepare(bodies[key], instance)
        if isinstance(prepared, Outcome):
            if prepared.log.get("lookup") == "api":
                tally.fullstory_lookups += 1
            fullstory_down = fullstory_down or prepared.reason is Reason.FULLSTORY_UNAVAILABLE
            _settle_unsent(prepared, key, handles, instance, tally, verdict)
            continue
        fme, log = prepared
        if log.get("lookup") == "api":
            tally.fullstory_lookups += 1
        pending.append((key, fme))
    if not pending:
        return
    api = FmeApi(instance.upstream, instance.settings.split_events_url, sdk_key)
    with budget(max(0.0, deadline - time.monotonic())):
        result = fme_bulk.send_all([fme for _, fme in pending], api.send)
    tally.fme_calls += result.calls
    tally.failures.update(result.failures)
    if result.refusals:
        logs.emit(logging.WARNING, f"FME refused {len(result.refusals)} events", fme_messages=result.refusals[:10])
    for (key, _), fate in zip(pending, result.fates, strict=True):
        if fate is fme_bulk.Fate.SENT:
            instance.dedup.done(key)
            verdict.acked.extend(groups[key])
            tally.fme_events_sent += 1
            tally.events_sent += 1
        else:
            instance.dedup.release(key)
            verdict.retry.extend(groups[key])


def _prepare(body: bytes, instance: Instance) -> tuple[dict[str, Any], dict[str, Any]] | Outcome:
    parsed = parse(body, instance.mapping.streams if instance.mapping else None)
    if isinstance(parsed, Outcome):
        return parsed
    if parsed.name.strip().lower() in instance.settings.loop_guard_events:
        return Outcome(Reason.LOOP_GUARD, "written by fs2split itself; not sent back to FME")
    if instance.mapping and instance.mapping.dropped_by(parsed.name) is not None:
        return Outcome(Reason.DROPPED_BY_MAPPING, "in the mapping's drop list; not sent")
    try:
        prepared = events_route.prepare(parsed, instance)
    except SecretUnavailable as error:
        return Outcome(Reason.SECRET_UNAVAILABLE, str(error))
    if isinstance(prepared, Outcome):
        return prepared
    fme, _key_source, log = prepared
    return fme, log


def _settle_unsent(
    outcome: Outcome, key: str, handles: list[str], instance: Instance, tally: Tally, verdict: Verdict
) -> None:
    """What direct mode answers 2xx or a final 4xx is acknowledged (with a log line); a 5xx is tried again."""
    tally.outcomes[outcome.reason.value] += len(handles)
    if outcome.status < 300:
        instance.dedup.done(key)
        verdict.acked.extend(handles)
        return
    instance.dedup.release(key)
    if outcome.status < 500:
        logs.emit(logging.WARNING, f"queued event not sent: {outcome.message}", reason=outcome.reason.value)
        verdict.acked.extend(handles)
        return
    tally.failures[outcome.reason.value] += len(handles)
    verdict.retry.extend(handles)


def _impressions(
    items: list[tuple[str, ImpressionsMessage]], instance: Instance, tally: Tally, verdict: Verdict, deadline: float
) -> None:
    if not items:
        return
    api_key = _key(instance, FULLSTORY_API_KEY) if not instance.settings.force_dry_run else None
    if not api_key:
        tally.failures["dry_run" if instance.settings.force_dry_run else "fullstory_key_missing"] += len(items)
        verdict.retry.extend(handle for handle, _ in items)
        return
    fullstory_down = False
    for handle, item in items:
        if fullstory_down or time.monotonic() >= deadline:
            verdict.retry.append(handle)
            continue
        with budget(max(0.0, deadline - time.monotonic())):
            outcome = impressions_writer.write(item.impressions, api_key, instance)
        tally.outcomes[outcome.reason.value] += 1
        written = outcome.body.get("delivered", 0)
        tally.impressions_sent += written
        tally.events_sent += written
        if outcome.status == 200:
            verdict.acked.append(handle)
        else:
            # Those written are remembered (and carry an Idempotency-Key): a redelivery sends only the rest.
            tally.failures[outcome.reason.value] += 1
            fullstory_down = outcome.status >= 500
            verdict.retry.append(handle)


def _key(instance: Instance, name: str) -> str | None:
    try:
        return instance.keys.get(name) or None
    except SecretUnavailable:
        return None
