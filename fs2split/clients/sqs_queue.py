"""Amazon SQS through boto3, imported only in queue mode (boto3 + an SQS client cost ~130 ms of cold start).

The endpoint comes from boto3's own variables (``AWS_ENDPOINT_URL_SQS`` or ``AWS_ENDPOINT_URL``), so moto or
LocalStack need no setting of ours.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

# SendMessageBatch takes at most 10 entries and 1 MiB in all (SQS quotas).
_BATCH_ENTRIES = 10
_BATCH_BYTES = 1024 * 1024
# Lambda's SQS poller deletes what we do not report; ChangeMessageVisibilityBatch also takes 10 entries.
_VISIBILITY_ENTRIES = 10


class QueueError(Exception):
    """The queue did not accept every message; the message names no secret and no message body."""


class SqsQueue:
    def __init__(self, queue_url: str, *, connect_timeout_s: float, read_timeout_s: float) -> None:
        self._url = queue_url
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._client: Any = None
        self._lock = threading.Lock()

    def _sqs(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    config = Config(
                        connect_timeout=self._timeouts[0],
                        read_timeout=self._timeouts[1],
                        retries={"mode": "standard", "max_attempts": 2},
                    )
                    self._client = boto3.client("sqs", config=config)
        return self._client

    def send(self, bodies: Sequence[str]) -> None:
        """Send every body, or raise QueueError: the caller acknowledges only after this returns."""
        for group in _groups(bodies):
            entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate(group)]
            try:
                answer = self._sqs().send_message_batch(QueueUrl=self._url, Entries=entries)
            except Exception as error:  # botocore's errors name the operation, never the credentials
                raise QueueError(f"SQS SendMessageBatch failed: {type(error).__name__}") from None
            failed = answer.get("Failed") or []
            if failed or len(answer.get("Successful") or []) != len(entries):
                code = str(failed[0].get("Code", "unknown"))[:80] if failed else "incomplete answer"
                raise QueueError(f"SQS refused {len(failed) or len(entries)} messages: {code}")

    def retry_later(self, receipt_handles: Sequence[str], seconds: int) -> int:
        """Keep failed messages invisible for ``seconds``; the number whose visibility could not be set."""
        missed = 0
        for start in range(0, len(receipt_handles), _VISIBILITY_ENTRIES):
            chunk = receipt_handles[start : start + _VISIBILITY_ENTRIES]
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for index, handle in enumerate(chunk)
            ]
            try:
                answer = self._sqs().change_message_visibility_batch(QueueUrl=self._url, Entries=entries)
                missed += len(answer.get("Failed") or [])
            except Exception:
                # The message still comes back, after the queue's own visibility timeout: nothing is lost.
                missed += len(chunk)
        return missed


def _groups(bodies: Sequence[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if not groups or len(groups[-1]) >= _BATCH_ENTRIES or size + length > _BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += length
    return groups
