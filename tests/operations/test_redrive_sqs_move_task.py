"""Redrive through SQS's native message-move task, which moto does not implement: botocore's Stubber stands
in for SQS and checks every call redrive makes, in order, with its parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from fs2split.redrive import sqs

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/fs2split"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:fs2split"
DLQ = "https://sqs.eu-west-1.amazonaws.com/123456789012/fs2split-dlq"
DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:fs2split-dlq"


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": QUEUE_ARN, "RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN})}},
            {"QueueUrl": QUEUE, "AttributeNames": ["QueueArn", "RedrivePolicy"]},
        )
        stub.add_response(
            "get_queue_url",
            {"QueueUrl": DLQ},
            {"QueueName": "fs2split-dlq", "QueueOwnerAWSAccountId": "123456789012"},
        )
        stub.add_response(
            "start_message_move_task", {"TaskHandle": "task-1"}, {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN}
        )
        yield client, stub


def task_status(status: str, moved: int) -> dict[str, Any]:
    return {"Results": [{"TaskHandle": "task-1", "Status": status, "ApproximateNumberOfMessagesMoved": moved}]}


def test_a_move_task_that_completes_is_all_redrive_does(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    listing = {"SourceArn": DLQ_ARN, "MaxResults": 1}
    stub.add_response("list_message_move_tasks", task_status("RUNNING", 3), listing)
    stub.add_response("list_message_move_tasks", task_status("COMPLETED", 7), listing)

    result = sqs.redrive(QUEUE, client=client, task_wait_s=30)

    assert (result.moved, result.method, result.error) == (7, "message-move-task", None)
    stub.assert_no_pending_responses()


def test_a_move_task_still_running_at_the_bound_is_cancelled_before_redrive_moves_the_rest(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    stub.add_response("list_message_move_tasks", task_status("RUNNING", 4), {"SourceArn": DLQ_ARN, "MaxResults": 1})
    stub.add_response("cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 4}, {"TaskHandle": "task-1"})
    receive = {
        "QueueUrl": DLQ,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 1,
        "VisibilityTimeout": 30,
        "MessageAttributeNames": ["All"],
    }
    message = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": '{"webhook": 1}'}
    stub.add_response("receive_message", {"Messages": [message]}, receive)
    stub.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "n1", "MD5OfMessageBody": "x"}], "Failed": []},
        {"QueueUrl": QUEUE, "Entries": [{"Id": "0", "MessageBody": '{"webhook": 1}', "MessageAttributes": {}}]},
    )
    stub.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": DLQ, "Entries": [{"Id": "0", "ReceiptHandle": "r1"}]},
    )
    stub.add_response("receive_message", {}, receive)
    stub.add_response("receive_message", {}, receive)

    result = sqs.redrive(QUEUE, client=client, task_wait_s=0)

    assert (result.moved, result.method, result.error) == (5, "receive-send-delete", None)
    stub.assert_no_pending_responses()
