"""AWS Lambda with an SQS event source mapping: a batch of queue messages in, the partial batch response out.

Lambda deletes every message not named in ``batchItemFailures``; the named ones come back once their visibility
runs out, which is set here to the backoff (unreadable ones: at once, on their way to the dead-letter queue).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from fs2split import logs, metrics
from fs2split.instance import Instance, current
from fs2split.outcome import Reason
from fs2split.queue import drain, enqueue
from fs2split.queue.drain import Received, Tally

# Time kept back from Lambda's remaining time to settle the batch and answer.
_MARGIN_S = 3.0


def serve(event: Any, context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    instance = current()
    tally = Tally()
    records = event.get("Records") if isinstance(event, Mapping) else None
    batch, receipts = _received(records if isinstance(records, list) else [], tally)
    if instance.settings_error:
        # Nothing can be delivered with unusable settings: everything waits in the queue for the fix.
        failed = [r.handle for r in batch]
        tally.messages, tally.failed = len(batch), len(failed)
        tally.failures[Reason.SETTINGS_INVALID.value] += len(failed)
        _log(instance, tally, started, Reason.SETTINGS_INVALID, instance.settings_error)
        return _answer(failed)
    verdict = drain.deliver(batch, instance, tally, seconds=_seconds(context, instance))
    _set_visibility(instance, receipts, verdict)
    _log(instance, tally, started, Reason.DRAINED, None)
    return _answer(verdict.retry + verdict.dead)


def _received(records: list[Any], tally: Tally) -> tuple[list[Received], dict[str, tuple[str, str]]]:
    """The messages, and messageId -> (receipt handle, event source ARN) for setting visibility."""
    now_ms = time.time() * 1000
    batch: list[Received] = []
    receipts: dict[str, tuple[str, str]] = {}
    for record in records:
        if not isinstance(record, Mapping) or not isinstance(record.get("messageId"), str) or not record["messageId"]:
            # Without an id it cannot be reported; Lambda deletes it with the batch. Not an SQS record anyway.
            tally.failures["not_an_sqs_record"] += 1
            logs.emit(logging.ERROR, "an SQS batch record without a messageId was skipped", route="drain")
            continue
        body = record.get("body")
        sent = (
            (record.get("attributes") or {}).get("SentTimestamp")
            if isinstance(record.get("attributes"), Mapping)
            else None
        )
        age = (now_ms - float(sent)) / 1000 if isinstance(sent, str) and sent.isdigit() else None
        handle = record["messageId"]
        batch.append(
            Received(handle, body.encode("utf-8", errors="surrogateescape") if isinstance(body, str) else None, age)
        )
        receipts[handle] = (str(record.get("receiptHandle") or ""), str(record.get("eventSourceARN") or ""))
    return batch, receipts


def _seconds(context: Any, instance: Instance) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return max(1.0, remaining() / 1000 - _MARGIN_S)
    return instance.settings.drain_s


def _set_visibility(instance: Instance, receipts: dict[str, tuple[str, str]], verdict: drain.Verdict) -> None:
    if not (verdict.retry or verdict.dead):
        return
    queue_url = instance.settings.queue_url or _queue_url(next(iter(receipts.values()))[1])
    if not queue_url:
        return  # the messages come back after the queue's own visibility timeout instead
    from fs2split.clients.sqs_queue import SqsQueue

    queue = enqueue.sender(instance) if instance.settings.queue_url else None
    if not isinstance(queue, SqsQueue):
        settings = instance.settings
        queue = SqsQueue(
            queue_url, connect_timeout_s=settings.connect_timeout_s, read_timeout_s=settings.read_timeout_s
        )
    backoff = int(instance.settings.drain_backoff_s)
    missed = queue.retry_later([receipts[h][0] for h in verdict.retry if receipts[h][0]], backoff)
    missed += queue.retry_later([receipts[h][0] for h in verdict.dead if receipts[h][0]], 0)
    if missed:
        logs.emit(logging.WARNING, f"visibility not set for {missed} messages; they return after the queue's timeout")


def _queue_url(arn: str) -> str:
    # arn:aws:sqs:<region>:<account>:<name>
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return ""
    return f"https://sqs.{parts[3]}.amazonaws.com/{parts[4]}/{parts[5]}"


def _log(instance: Instance, tally: Tally, started: float, reason: Reason, detail: str | None) -> None:
    settings = instance.settings
    # The run line's counts, with route "drain" and, on Lambda, the EMF block that makes them metrics.
    run = metrics.line_metrics(settings.emf_metrics, settings.metrics_namespace).for_drain(
        messages=tally.messages,
        events_sent=tally.events_sent,
        failed=tally.failed,
        oldest_message_age_s=tally.oldest_message_age_s or 0.0,
    )
    logs.emit(
        logging.INFO if reason is Reason.DRAINED else logging.ERROR,
        f"drain: {tally.messages} messages, {tally.events_sent} events sent, {tally.failed} failed",
        reason=reason.value,
        detail=detail,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        **{**tally.fields(), **run},
    )


def _answer(failed: list[str]) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": handle} for handle in failed]}
