"""Redrive on SQS: the queue's redrive policy names its dead-letter queue; SQS's own message-move task
moves the messages where the endpoint has it, else fs2split receives, re-sends and then deletes them.

boto3 is imported on use only (the Lambda runtime ships it; Cloud Functions never loads this module).
The endpoint comes from boto3's standard variables (``AWS_ENDPOINT_URL_SQS``, ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from typing import Any

from fs2split.redrive import RedriveError, RedriveResult

# SQS's limits: 10 messages per receive and per batch call; a received message stays hidden this long,
# long enough to re-send and delete it, short enough that a crashed redrive gives it back soon.
_BATCH = 10
_VISIBILITY_S = 30
_POLL_S = 1.0


def redrive(
    queue_url: str, *, dry_run: bool = False, timeout_s: float = 120.0, task_wait_s: float = 60.0, client: Any = None
) -> RedriveResult:
    """Move every message of ``queue_url``'s dead-letter queue back to it, within ``timeout_s``."""
    client = client or _client(queue_url)
    deadline = time.monotonic() + timeout_s
    queue_arn, dlq_arn = _arns(client, queue_url)
    dlq_url = _call(client.get_queue_url, QueueName=dlq_arn.split(":")[5], QueueOwnerAWSAccountId=dlq_arn.split(":")[4])
    dlq_url = dlq_url["QueueUrl"]
    if dry_run:
        return RedriveResult(dlq_url, _depth(client, dlq_url), dry_run=True, approximate=True)
    moved, finished = _move_task(client, dlq_arn, queue_arn, min(deadline, time.monotonic() + task_wait_s))
    if finished:
        return RedriveResult(dlq_url, moved, method="message-move-task", approximate=True)
    more, error = _receive_send_delete(client, dlq_url, queue_url, deadline)
    return RedriveResult(dlq_url, moved + more, method="receive-send-delete", error=error)


def _client(queue_url: str) -> Any:
    try:
        import boto3
    except ImportError:
        raise RedriveError("boto3 is not installed: pip install boto3") from None
    # The region is in the queue's URL (https://sqs.REGION.amazonaws.com/...) when the environment has none.
    found = re.match(r"https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", queue_url)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or (found and found.group(1))
    return boto3.client("sqs", region_name=region or None)


def _call(operation: Any, **parameters: Any) -> Any:
    """One SQS call; its failure becomes a one-line RedriveError naming the operation and AWS's error code."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return operation(**parameters)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "error"))[:80]
        raise RedriveError(f"SQS {error.operation_name} failed: {code}") from None
    except BotoCoreError as error:
        raise RedriveError(f"SQS call failed: {type(error).__name__}") from None


def _arns(client: Any, queue_url: str) -> tuple[str, str]:
    attributes = _call(client.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])
    attributes = attributes.get("Attributes", {})
    try:
        dlq_arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
    except (KeyError, TypeError, ValueError):
        raise RedriveError("the queue has no redrive policy, so it has no dead-letter queue to redrive") from None
    if not isinstance(dlq_arn, str) or dlq_arn.count(":") != 5:
        raise RedriveError("the queue's redrive policy names no usable dead-letter queue ARN")
    return str(attributes["QueueArn"]), dlq_arn


def _depth(client: Any, queue_url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = _call(client.get_queue_attributes, QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def _move_task(client: Any, source_arn: str, destination_arn: str, until: float) -> tuple[int, bool]:
    """SQS's own move (asynchronous): (moved, finished). Not every endpoint has it (moto answers it with an
    error): then (0, False) and the caller moves the messages itself. A task still running at ``until`` is
    cancelled, so the fallback never races it."""
    try:
        handle = _call(client.start_message_move_task, SourceArn=source_arn, DestinationArn=destination_arn)
    except RedriveError:
        return 0, False
    handle = handle.get("TaskHandle")
    status: dict[str, Any] = {}
    while True:
        try:
            tasks = _call(client.list_message_move_tasks, SourceArn=source_arn, MaxResults=1).get("Results", [])
        except RedriveError:
            tasks = []
        status = tasks[0] if tasks else status
        if status.get("Status") in ("COMPLETED", "FAILED", "CANCELLED") or time.monotonic() >= until:
            break
        time.sleep(_POLL_S)
    if status.get("Status") == "RUNNING" and handle:
        # It may have finished meanwhile; the fallback moves whatever is left either way.
        with contextlib.suppress(RedriveError):
            _call(client.cancel_message_move_task, TaskHandle=handle)
    return int(status.get("ApproximateNumberOfMessagesMoved", 0)), status.get("Status") == "COMPLETED"


def _receive_send_delete(client: Any, dlq_url: str, queue_url: str, deadline: float) -> tuple[int, str | None]:
    """Ten at a time: a message is deleted from the dead-letter queue only after the queue accepted its copy."""
    moved, empty_receives = 0, 0
    while time.monotonic() < deadline:
        received = _call(
            client.receive_message,
            QueueUrl=dlq_url,
            MaxNumberOfMessages=_BATCH,
            # A long poll of 1 s asks every SQS server, so two empty answers mean the queue is empty.
            WaitTimeSeconds=1,
            VisibilityTimeout=_VISIBILITY_S,
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if not messages:
            empty_receives += 1
            if empty_receives >= 2:
                return moved, None
            continue
        empty_receives = 0
        entries = [
            {"Id": str(i), "MessageBody": m["Body"], "MessageAttributes": _attributes(m)}
            for i, m in enumerate(messages)
        ]
        try:
            sent = _call(client.send_message_batch, QueueUrl=queue_url, Entries=entries)
        except RedriveError as error:
            _give_back(client, dlq_url, messages)
            return moved, f"{error}; {moved} moved, the rest stay dead-lettered"
        accepted = {entry["Id"] for entry in sent.get("Successful", [])}
        copied = [m for i, m in enumerate(messages) if str(i) in accepted]
        refused = [m for i, m in enumerate(messages) if str(i) not in accepted]
        if copied:
            deletes = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(copied)]
            moved += len(copied)
            try:
                deleted = _call(client.delete_message_batch, QueueUrl=dlq_url, Entries=deletes)
            except RedriveError as error:
                deleted = {"Failed": deletes, "Error": str(error)}
            if deleted.get("Failed"):
                # These copies are in both queues now: the drain's dedup absorbs the repeat.
                return (
                    moved,
                    f"{len(deleted['Failed'])} re-sent message(s) could not be deleted from the dead-letter queue",
                )
        if refused:
            _give_back(client, dlq_url, refused)
            return moved, f"SQS refused {len(refused)} message(s); {moved} moved, the rest stay dead-lettered"
    return moved, f"stopped at the time bound; {moved} moved, run again for the rest"


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        kept[name] = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
    return kept


def _give_back(client: Any, dlq_url: str, messages: list[dict[str, Any]]) -> None:
    """Make messages that were not re-sent visible again at once, not after the visibility timeout."""
    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)
    ]
    # Should this fail, they come back anyway once the visibility timeout ends: nothing is lost.
    with contextlib.suppress(RedriveError):
        _call(client.change_message_visibility_batch, QueueUrl=dlq_url, Entries=entries)
