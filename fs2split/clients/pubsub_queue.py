"""Google Cloud Pub/Sub over its REST API, through the instance's pooled session.

Not the ``google-cloud-pubsub`` client: its gRPC stack costs ~165 ms of cold start and its publisher batches
behind a 10 ms timer (docs/queue.md). Against ``PUBSUB_EMULATOR_HOST`` the calls go out plain; otherwise they
carry an OAuth token from ``google.auth`` (Application Default Credentials), imported only in queue mode.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fs2split.clients.sqs_queue import QueueError
from fs2split.clients.upstream import Reply, Upstream

_API = "https://pubsub.googleapis.com"
_SCOPE = "https://www.googleapis.com/auth/pubsub"
# A publish request takes at most 1,000 messages and 10 MB; stay well under the bytes.
_PUBLISH_MESSAGES = 1000
_PUBLISH_BYTES = 8 * 1024 * 1024
# Pub/Sub's largest pull.
MAX_PULL = 1000


@dataclass(frozen=True)
class Pulled:
    ack_id: str
    message_id: str
    data: bytes | None  # None: the message's data is not base64 (it cannot be read, ever)
    publish_time: str
    delivery_attempt: int


class PubSubQueue:
    def __init__(self, upstream: Upstream, *, topic: str = "", subscription: str = "") -> None:
        self._upstream = upstream
        self._topic = topic
        self._subscription = subscription
        emulator = os.environ.get("PUBSUB_EMULATOR_HOST", "").strip()
        self._base = f"http://{emulator}" if emulator else _API
        self._emulated = bool(emulator)
        self._credentials: Any = None
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        if self._emulated:
            return {}
        with self._lock:
            if self._credentials is None:
                import google.auth

                self._credentials, _ = google.auth.default(scopes=[_SCOPE])
            if not self._credentials.valid:
                from google.auth.transport.requests import Request

                try:
                    self._credentials.refresh(Request(session=self._upstream.session))
                except Exception as error:  # google.auth's errors describe the metadata server, not a token
                    raise QueueError(f"no Google credentials for Pub/Sub: {type(error).__name__}") from None
            return {"Authorization": f"Bearer {self._credentials.token}"}

    def _call(self, resource: str, verb: str, body: dict[str, Any]) -> Reply:
        return self._upstream.request(
            "POST", f"{self._base}/v1/{resource}:{verb}", headers=self._headers(), json_body=body
        )

    def send(self, bodies: Sequence[str]) -> None:
        """Publish every body, or raise QueueError; returns only after Pub/Sub stored them all."""
        for group in _groups(bodies):
            messages = [{"data": base64.b64encode(body.encode()).decode()} for body in group]
            reply = self._call(self._topic, "publish", {"messages": messages})
            ids = reply.data.get("messageIds") if reply.ok and isinstance(reply.data, dict) else None
            if not isinstance(ids, list) or len(ids) != len(messages):
                # A 200 without one id per message is not an acceptance.
                raise QueueError(f"Pub/Sub publish failed: {reply.describe() if not reply.ok else 'malformed answer'}")

    def pull(self, max_messages: int) -> list[Pulled]:
        """At most ``max_messages`` (without waiting when the subscription is empty); raises QueueError."""
        reply = self._call(
            self._subscription, "pull", {"maxMessages": min(max_messages, MAX_PULL), "returnImmediately": True}
        )
        if not reply.ok or not isinstance(reply.data, dict | None):
            raise QueueError(f"Pub/Sub pull failed: {reply.describe() if not reply.ok else 'malformed answer'}")
        received = (reply.data or {}).get("receivedMessages") or []
        if not isinstance(received, list):
            raise QueueError("Pub/Sub pull failed: malformed answer")
        return [pulled for item in received if (pulled := _pulled(item)) is not None]

    def acknowledge(self, ack_ids: Sequence[str]) -> bool:
        return self._each_chunk("acknowledge", ack_ids, {})

    def retry_later(self, ack_ids: Sequence[str], seconds: int) -> bool:
        return self._each_chunk("modifyAckDeadline", ack_ids, {"ackDeadlineSeconds": seconds})

    def _each_chunk(self, verb: str, ack_ids: Sequence[str], extra: dict[str, Any]) -> bool:
        ok = True
        for start in range(0, len(ack_ids), MAX_PULL):
            reply = self._call(self._subscription, verb, {"ackIds": list(ack_ids[start : start + MAX_PULL]), **extra})
            ok = ok and reply.ok
        return ok


def _pulled(item: Any) -> Pulled | None:
    if not isinstance(item, dict) or not isinstance(item.get("ackId"), str):
        return None  # nothing to acknowledge it with: the subscription redelivers it, then dead-letters it
    message = item.get("message") if isinstance(item.get("message"), dict) else {}
    try:
        data: bytes | None = base64.b64decode(str(message.get("data", "")), validate=True)
    except ValueError:
        data = None
    attempt = item.get("deliveryAttempt")
    return Pulled(
        ack_id=item["ackId"],
        message_id=str(message.get("messageId", ""))[:100],
        data=data,
        publish_time=str(message.get("publishTime", ""))[:40],
        delivery_attempt=attempt if isinstance(attempt, int) else 0,
    )


def _groups(bodies: Sequence[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    size = 0
    for body in bodies:
        length = len(body) * 4 // 3 + 64
        if not groups or len(groups[-1]) >= _PUBLISH_MESSAGES or size + length > _PUBLISH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += length
    return groups
