"""``python -m fs2split redrive`` on SQS, against moto's SQS in server mode started by the tests: dead
letters go back to the queue with their attributes, a dry run moves nothing, and a failure half way loses
no message. moto answers SQS's message-move task with an error, so these runs take the receive, send,
delete route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from fs2split.__main__ import main
from fs2split.redrive import sqs
from tests.support.redrive_servers import moto_server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def client(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    return boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queues(client: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A queue with a dead-letter queue, named for the test; FS2SPLIT_QUEUE_URL points at the queue."""
    name = request.node.name.replace("_", "-")[:60]
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    queue = client.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    monkeypatch.setenv("FS2SPLIT_QUEUE_URL", queue)
    return queue, dlq


def dead_letter(client: Any, dlq: str, count: int) -> set[str]:
    bodies = {json.dumps({"webhook": n}) for n in range(count)}
    for body in bodies:
        attributes = {"kind": {"DataType": "String", "StringValue": "fullstory"}}
        client.send_message(QueueUrl=dlq, MessageBody=body, MessageAttributes=attributes)
    return bodies


def take_all(client: Any, url: str) -> list[dict[str, Any]]:
    """Every message now visible in the queue, deleted as read."""
    taken: list[dict[str, Any]] = []
    while True:
        batch = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return taken
        taken.extend(batch)
        for message in batch:
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_redrive_moves_every_dead_letter_back_to_the_queue_with_its_attributes(
    client: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    queue, dlq = queues
    bodies = dead_letter(client, dlq, 25)

    assert main(["redrive"]) == 0

    back = take_all(client, queue)
    assert sorted(m["Body"] for m in back) == sorted(bodies)
    assert {m["MessageAttributes"]["kind"]["StringValue"] for m in back} == {"fullstory"}
    assert take_all(client, dlq) == []
    assert "moved 25 message(s)" in (out := capsys.readouterr().out)
    # moto answers the message-move task with an error: the fallback moved them.
    assert "(receive-send-delete)" in out


def test_dry_run_counts_the_dead_letters_and_moves_none(
    client: Any, queues: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    queue, dlq = queues
    bodies = dead_letter(client, dlq, 7)

    assert main(["redrive", "--dry-run"]) == 0

    assert "about 7 dead-lettered message(s)" in capsys.readouterr().out
    assert take_all(client, queue) == []
    assert sorted(m["Body"] for m in take_all(client, dlq)) == sorted(bodies)


def test_a_failure_half_way_loses_no_message_and_a_second_run_moves_the_rest(
    client: Any, queues: tuple[str, str]
) -> None:
    queue, dlq = queues
    bodies = dead_letter(client, dlq, 25)
    sends = []

    def network_drops_the_second_send(**_: Any) -> None:
        sends.append(1)
        if len(sends) == 2:
            raise EndpointConnectionError(endpoint_url=queue)

    client.meta.events.register("before-call.sqs.SendMessageBatch", network_drops_the_second_send)

    first = sqs.redrive(queue, client=client, timeout_s=30)
    client.meta.events.unregister("before-call.sqs.SendMessageBatch", network_drops_the_second_send)
    second = sqs.redrive(queue, client=client, timeout_s=30)

    assert first.error is not None
    assert (first.moved, second.moved, second.error) == (10, 15, None)
    assert sorted(m["Body"] for m in take_all(client, queue)) == sorted(bodies)
    assert take_all(client, dlq) == []


def test_a_queue_without_a_dead_letter_queue_is_refused_with_the_reason(
    client: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FS2SPLIT_QUEUE_URL", client.create_queue(QueueName="no-dlq")["QueueUrl"])

    assert main(["redrive"]) == 1

    assert "no redrive policy" in capsys.readouterr().err


def test_without_a_configured_queue_redrive_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redrive"]) == 2

    assert "FS2SPLIT_QUEUE_URL" in capsys.readouterr().err
