"""The webhooks' side of queue mode: put what passed the route's checks on the queue, and answer 200 ``queued``
only once the queue accepted every message (503 ``queue_unavailable`` otherwise, so the sender retries).

Redelivered webhooks are queued again: dedup happens in the drain, which sees every copy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from fs2split import logs
from fs2split.clients.sqs_queue import QueueError
from fs2split.clients.upstream import budget
from fs2split.impressions.event import Impression
from fs2split.instance import Instance
from fs2split.outcome import Outcome, Reason
from fs2split.queue import message


class Sender(Protocol):
    def send(self, bodies: Sequence[str]) -> None: ...


_lock = threading.Lock()


def sender(instance: Instance) -> Sender:
    """The instance's queue client, built on first use: SQS when FS2SPLIT_QUEUE_URL is set, else Pub/Sub."""
    if instance.queue is None:
        with _lock:
            if instance.queue is None:
                settings = instance.settings
                if settings.queue_url:
                    from fs2split.clients.sqs_queue import SqsQueue

                    # boto3 knows no shared deadline: two attempts whose timeouts fit the retry budget.
                    connect = min(settings.connect_timeout_s, settings.retry_budget_s / 4)
                    instance.queue = SqsQueue(
                        settings.queue_url,
                        connect_timeout_s=connect,
                        read_timeout_s=max(0.5, min(settings.read_timeout_s, settings.retry_budget_s / 2 - connect)),
                    )
                else:
                    from fs2split.clients.pubsub_queue import PubSubQueue

                    instance.queue = PubSubQueue(
                        instance.upstream, topic=settings.pubsub_topic, subscription=settings.pubsub_subscription
                    )
    return instance.queue  # type: ignore[return-value]


def fullstory(body: bytes, dedup_key: str, instance: Instance) -> Outcome:
    encoded = message.fullstory(body, dedup_key)
    if len(encoded.encode("utf-8", errors="surrogateescape")) > message.MAX_MESSAGE_BYTES:
        return Outcome(
            Reason.PAYLOAD_TOO_LARGE, f"the body does not fit one queue message ({message.MAX_MESSAGE_BYTES} bytes)"
        )
    return _send([encoded], instance, {"queued": 1})


def impressions(items: Sequence[Impression], instance: Instance, log: dict[str, object]) -> Outcome:
    messages = list(message.impressions(items))
    return _send(messages, instance, {**log, "queued": len(items), "queue_messages": len(messages)})


def _send(bodies: list[str], instance: Instance, log: dict[str, object]) -> Outcome:
    try:
        # The webhook answers within its budget even when the queue is slow (Pub/Sub calls share the deadline).
        with budget(instance.settings.retry_budget_s):
            sender(instance).send(bodies)
    except QueueError as error:
        logs.emit(logging.ERROR, "enqueue failed", reason=Reason.QUEUE_UNAVAILABLE.value, detail=str(error))
        return Outcome(Reason.QUEUE_UNAVAILABLE, f"the queue did not accept the webhook; retry later: {error}", log=log)
    return Outcome(Reason.QUEUED, "queued for delivery", body={"queued": log.get("queued", 0)}, log=log)
