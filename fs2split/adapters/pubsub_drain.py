"""Cloud Functions drain: Cloud Scheduler POSTs, the function pulls the Pub/Sub subscription in batches until it
is empty or ``FS2SPLIT_DRAIN_SECONDS`` is spent, and settles every message it pulled.

Delivered or deliberately dropped: acknowledged. Failed for now (or refused): its ack deadline becomes the backoff,
so a later run gets it again. Unreadable: deadline 0, so it reaches the dead-letter topic after the maximum attempts.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from fs2split import logs
from fs2split.app import respond
from fs2split.clients.pubsub_queue import MAX_PULL, PubSubQueue, Pulled
from fs2split.clients.sqs_queue import QueueError
from fs2split.config.keys import FULLSTORY_API_KEY, SPLIT_API_KEY
from fs2split.instance import Instance, current
from fs2split.outcome import Outcome, Reason
from fs2split.queue import drain
from fs2split.queue.drain import Received, Tally

# Messages delivered together: one FME call per thousand events.
BATCH = 1000
# ... and at most this many bytes of them in memory (Lambda's 6 MB payload limit bounds the SQS side).
BATCH_BYTES = 16 * 1024 * 1024
# Stop pulling when this little of the run's time is left: the last batch must still be delivered and settled.
_SETTLE_S = 5.0


def serve(flask_request: Any) -> tuple[bytes, int, dict[str, str]]:
    started = time.perf_counter()
    method, path = flask_request.method, flask_request.path
    outcome = run(current()) if method.upper() == "POST" else None
    if outcome is None:
        outcome = Outcome(Reason.METHOD_NOT_ALLOWED, "drain takes POST", headers={"Allow": "POST"})
    response = respond(method, path, outcome, route="drain", started=started)
    return response.body_bytes(), response.status, response.all_headers()


def run(instance: Instance) -> Outcome:
    settings = instance.settings
    tally = Tally()
    if instance.settings_error:
        return Outcome(Reason.SETTINGS_INVALID, instance.settings_error, log=tally.fields())
    if not settings.pubsub_subscription:
        return Outcome(Reason.SETTINGS_INVALID, "FS2SPLIT_PUBSUB_SUBSCRIPTION is not set", log=tally.fields())
    if settings.force_dry_run or not (
        instance.keys.configured(SPLIT_API_KEY) or instance.keys.configured(FULLSTORY_API_KEY)
    ):
        # Pulling would spend delivery attempts towards the dead-letter topic: pull nothing at all.
        return Outcome(Reason.DRY_RUN, "dry run: nothing pulled, nothing sent", body=_counts(tally), log=tally.fields())
    queue = PubSubQueue(instance.upstream, subscription=settings.pubsub_subscription)
    deadline = time.monotonic() + settings.drain_s
    try:
        while time.monotonic() < deadline - _SETTLE_S:
            pulled, empty = _pull(queue, deadline)
            if pulled:
                _settle(queue, pulled, instance, tally, deadline)
            if empty:
                break
    except QueueError as error:
        logs.emit(logging.ERROR, f"drain stopped: {error}", route="drain")
        if not tally.messages:
            return Outcome(Reason.QUEUE_UNAVAILABLE, str(error), log=tally.fields())
    return Outcome(Reason.DRAINED, f"{tally.messages} messages drained", body=_counts(tally), log=tally.fields())


def _pull(queue: PubSubQueue, deadline: float) -> tuple[list[Pulled], bool]:
    """Up to BATCH messages, and whether the subscription looked empty (a pull returned nothing)."""
    pulled: list[Pulled] = []
    size = 0
    while len(pulled) < BATCH and size < BATCH_BYTES and time.monotonic() < deadline - _SETTLE_S:
        got = queue.pull(min(MAX_PULL, BATCH - len(pulled)))
        if not got:
            return pulled, True
        pulled.extend(got)
        size += sum(len(p.data or b"") for p in got)
    return pulled, False


def _settle(queue: PubSubQueue, pulled: list[Pulled], instance: Instance, tally: Tally, deadline: float) -> None:
    now = time.time()
    batch = [Received(p.ack_id, p.data, _age(p.publish_time, now)) for p in pulled]
    verdict = drain.deliver(batch, instance, tally, seconds=max(1.0, deadline - time.monotonic() - 1.0))
    settled = queue.acknowledge(verdict.acked) if verdict.acked else True
    settled = queue.retry_later(verdict.retry, int(instance.settings.drain_backoff_s)) and settled
    settled = queue.retry_later(verdict.dead, 0) and settled
    if not settled:
        # An unacknowledged message comes back after its deadline: delivered twice at worst, never lost.
        logs.emit(logging.WARNING, "some messages could not be settled; they will be redelivered", route="drain")


def _age(publish_time: str, now: float) -> float | None:
    try:
        head, _, fraction = publish_time.rstrip("Z").partition(".")
        published = datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{fraction or 0}")
    except ValueError:
        return None
    return max(0.0, now - published)


def _counts(tally: Tally) -> dict[str, Any]:
    fields = tally.fields()
    return {name: fields[name] for name in ("messages", "events_sent", "failed", "oldest_message_age_s")}
