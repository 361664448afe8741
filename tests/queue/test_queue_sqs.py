"""Queue mode on AWS, end to end on moto's SQS in server mode: the webhook entry point enqueues, and the test plays
Lambda's event source mapping (receive a batch, call ``lambda_drain``, delete what it did not report failed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import main
from fs2split import instance as instance_module
from tests.conftest import event_bytes
from tests.support.queues import FAKE_AWS, MotoSqs
from tests.support.upstream import FakeUpstream, Fault

USER = "6915774531905556"
SESSION = f"https://app.fullstory.com/ui/TN1/session/{USER}:5557778531805533"
MAX_RECEIVES = 3


class Context:
    """What the Lambda runtime passes: only the remaining time is read."""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(scope="module")
def sqs() -> Iterator[MotoSqs]:
    server = MotoSqs()
    yield server
    server.stop()


@pytest.fixture
def queues(sqs: MotoSqs, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    client = sqs.client()
    name = f"fs2split-{time.monotonic_ns()}"
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
    url = client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    for variable, value in FAKE_AWS.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", sqs.url)
    return {"url": url, "dlq": dlq}


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        up.add_user(USER, "customer-42")
        yield up


@pytest.fixture
def queue_mode(queues: dict[str, str], upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in {
        "FS2SPLIT_DELIVERY": "queue",
        "FS2SPLIT_QUEUE_URL": queues["url"],
        "FS2SPLIT_DRAIN_BACKOFF_SECONDS": "1",
        "SPLIT_API_KEY": "sdk-key",
        "FULLSTORY_API_KEY": "fs-key",
        "SPLIT_EVENTS_URL": upstream.split_events_url,
        "FULLSTORY_API_URL": upstream.fullstory_url,
        "FS2SPLIT_RETRY_BUDGET_SECONDS": "1",
        "FS2SPLIT_RETRY_BACKOFF_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    return queues


def custom_event(n: int) -> bytes:
    return json.dumps(
        {
            "eventName": "recording.event.custom",
            "version": 1,
            "data": {
                "name": "Product Added",
                "properties": {"position_int": n},
                "sessionUrl": SESSION,
                "timestamp": "2026-12-01T10:00:00.000Z",
            },
        }
    ).encode()


def post(path: str, body: bytes) -> dict[str, Any]:
    answer = main.lambda_handler(
        {
            "version": "2.0",
            "rawPath": path,
            "requestContext": {"http": {"method": "POST", "path": path}},
            "body": body.decode(),
        },
        None,
    )
    return {"status": answer["statusCode"], **json.loads(answer["body"])}


def play_event_source_mapping(sqs: MotoSqs, url: str, batch: int = 10) -> list[str]:
    """One poll, as Lambda's SQS poller does it: receive, invoke, delete what the function did not report.
    Returns the ids reported failed."""
    client = sqs.client()
    records: list[dict[str, Any]] = []
    while len(records) < batch:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        records += [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fs2split",
            }
            for m in got
        ]
    if not records:
        return []
    answer = main.lambda_drain({"Records": records}, Context())
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    for record in records:
        if record["messageId"] not in failed:
            client.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
    return failed


def waiting(sqs: MotoSqs, url: str) -> int:
    attributes = sqs.client().get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_webhook_answers_queued_and_nothing_reaches_fme_before_the_drain(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    answers = [post("/fullstory", custom_event(n)) for n in range(5)]

    assert {(a["status"], a["reason"]) for a in answers} == {(200, "queued")}
    assert upstream.calls("POST", "/api/events/bulk") == []
    assert waiting(sqs, queue_mode["url"]) == 5


def test_drain_delivers_every_queued_event_in_one_fme_call_with_one_lookup(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    for n in range(8):
        post("/fullstory", custom_event(n))

    assert play_event_source_mapping(sqs, queue_mode["url"]) == []

    assert len(upstream.fme_posts()) == 1
    assert sorted(e["properties"]["position_int"] for e in upstream.fme_events()) == list(range(8))
    assert {e["key"] for e in upstream.fme_events()} == {"customer-42"}
    assert len(upstream.calls("GET", f"/v2/users/{USER}")) == 1
    assert waiting(sqs, queue_mode["url"]) == 0


def test_every_event_reaches_fme_exactly_once_across_an_fme_outage(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    for n in range(6):
        post("/fullstory", custom_event(n))
    # FME redelivered twice by the webhook: the queue holds copies, the drain dedups them.
    post("/fullstory", custom_event(0))
    post("/fullstory", custom_event(1))
    upstream.script("POST", "/api/events/bulk", *[Fault(status=503)] * 20)

    failed = play_event_source_mapping(sqs, queue_mode["url"])

    assert len(failed) == 8
    assert upstream.fme_events() == []
    assert waiting(sqs, queue_mode["url"]) == 8
    upstream.clear_scripts()
    time.sleep(1.2)  # the backoff the drain set on the failed messages' visibility
    assert play_event_source_mapping(sqs, queue_mode["url"]) == []
    assert sorted(e["properties"]["position_int"] for e in upstream.fme_events()) == list(range(6))
    assert waiting(sqs, queue_mode["url"]) == 0


def test_failed_messages_stay_invisible_for_the_backoff(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    post("/fullstory", custom_event(1))
    upstream.script("POST", "/api/events/bulk", *[Fault(status=503)] * 20)

    assert len(play_event_source_mapping(sqs, queue_mode["url"])) == 1

    # Visible again only after the backoff (1 s here), not after the queue's 30 s visibility timeout.
    assert sqs.client().receive_message(QueueUrl=queue_mode["url"]).get("Messages") is None
    time.sleep(1.2)
    assert len(sqs.client().receive_message(QueueUrl=queue_mode["url"]).get("Messages", [])) == 1


def test_a_refused_event_is_isolated_and_dead_lettered_while_the_others_are_delivered(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    for n in range(9):
        post("/fullstory", custom_event(n))
    upstream.fme_refuses = lambda event: event.get("properties", {}).get("position_int") == 4

    for _ in range(MAX_RECEIVES):
        play_event_source_mapping(sqs, queue_mode["url"])
        time.sleep(1.2)  # the backoff
    # SQS moves a message to the dead-letter queue when a receive would exceed maxReceiveCount.
    assert play_event_source_mapping(sqs, queue_mode["url"]) == []

    assert sorted(e["properties"]["position_int"] for e in upstream.fme_events()) == [0, 1, 2, 3, 5, 6, 7, 8]
    dead = sqs.client().receive_message(QueueUrl=queue_mode["dlq"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(json.loads(m["Body"])["body"])["data"]["properties"]["position_int"] for m in dead] == [4]
    assert waiting(sqs, queue_mode["url"]) == 0


def test_impressions_survive_a_fullstory_outage_that_outlasts_fmes_single_retry(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    upstream.script("POST", "/v2/events", *[Fault(status=503)] * 50)
    body = event_bytes("split-impressions-webhook.json")

    # FME's call and its one retry both succeed: the queue took them, FullStory's outage does not matter yet.
    assert post("/split/impressions", body)["reason"] == "queued"
    assert len(play_event_source_mapping(sqs, queue_mode["url"])) == 1
    assert upstream.fullstory_events() == []

    upstream.clear_scripts()
    time.sleep(1.2)
    assert play_event_source_mapping(sqs, queue_mode["url"]) == []
    written = upstream.fullstory_events()
    assert len(written) == len(json.loads(body))
    assert {e["name"] for e in written} == {"split_evaluation"}


def test_an_unreadable_message_is_dead_lettered_not_retried_forever(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    sqs.client().send_message(QueueUrl=queue_mode["url"], MessageBody="not an fs2split message")

    for _ in range(MAX_RECEIVES + 1):
        play_event_source_mapping(sqs, queue_mode["url"])

    assert waiting(sqs, queue_mode["url"]) == 0
    dead = sqs.client().receive_message(QueueUrl=queue_mode["dlq"])["Messages"]
    assert [m["Body"] for m in dead] == ["not an fs2split message"]
    assert upstream.calls() == []


def test_a_queue_that_refuses_the_message_answers_503_queue_unavailable(
    queue_mode: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FS2SPLIT_QUEUE_URL", queue_mode["url"] + "-missing")

    answer = post("/fullstory", custom_event(1))

    assert (answer["status"], answer["reason"]) == (503, "queue_unavailable")


def test_dry_run_queues_nothing(sqs: MotoSqs, queue_mode: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FS2SPLIT_DRY_RUN", "true")

    answer = post("/fullstory", custom_event(1))

    assert answer["reason"] == "dry_run"
    assert waiting(sqs, queue_mode["url"]) == 0


def test_loop_guarded_events_are_answered_as_today_and_never_queued(sqs: MotoSqs, queue_mode: dict[str, str]) -> None:
    body = json.loads(custom_event(1))
    body["data"]["name"] = "split_evaluation"

    answer = post("/fullstory", json.dumps(body).encode())

    assert answer["reason"] == "loop_guard"
    assert waiting(sqs, queue_mode["url"]) == 0


def test_the_drain_logs_one_line_with_the_operations_fields(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        post("/fullstory", custom_event(n))
    capsys.readouterr()

    play_event_source_mapping(sqs, queue_mode["url"])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"route": "drain"' in line]
    assert len(lines) == 1
    line = lines[0]
    assert (line["messages"], line["events_sent"], line["failed"], line["fme_calls"]) == (3, 3, 0, 1)
    assert line["oldest_message_age_s"] >= 0
    assert "sdk-key" not in json.dumps(line)
    assert "fs-key" not in json.dumps(line)


def test_with_unusable_settings_the_whole_batch_waits_in_the_queue(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    post("/fullstory", custom_event(1))
    post("/fullstory", custom_event(2))
    monkeypatch.setenv("FS2SPLIT_DRAIN_BACKOFF_SECONDS", "soon")
    instance_module.reset()

    assert len(play_event_source_mapping(sqs, queue_mode["url"])) == 2
    assert upstream.fme_events() == []
    assert waiting(sqs, queue_mode["url"]) == 2


def test_an_fme_outage_does_not_hold_back_impressions_in_the_same_batch(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    post("/fullstory", custom_event(1))
    post("/split/impressions", event_bytes("split-impressions-webhook.json"))
    upstream.script("POST", "/api/events/bulk", *[Fault(status=503)] * 20)

    failed = play_event_source_mapping(sqs, queue_mode["url"])

    assert len(failed) == 1  # the FullStory event waits for FME; the impressions message is done
    assert upstream.fme_events() == []
    assert {e["name"] for e in upstream.fullstory_events()} == {"split_evaluation"}
    assert waiting(sqs, queue_mode["url"]) == 1


def test_a_fullstory_outage_stops_lookups_but_not_events_whose_key_needs_none(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    streams = json.loads(event_bytes("fullstory-streams-event.json"))  # carries its uid: no lookup needed
    post("/fullstory", json.dumps(streams).encode())
    for n in range(3):
        post("/fullstory", custom_event(n))  # each needs the (one) user's lookup
    upstream.script("GET", "/v2/users/", *[Fault(status=503)] * 50)

    failed = play_event_source_mapping(sqs, queue_mode["url"])

    assert len(failed) == 3
    assert len(upstream.fme_events()) == 1
    # One lookup (at most 1 + 5 retries) for the first event, then none for the other two this run.
    assert 1 <= len(upstream.calls("GET", "/v2/users/")) <= 6


def test_two_identical_streams_without_event_time_both_reach_fme_through_the_queue(
    sqs: MotoSqs, queue_mode: dict[str, str], upstream: FakeUpstream
) -> None:
    # A flat Stream whose mapping left event_time out: the same body twice is a user repeating an action (issue 14),
    # so the drain's dedup must not take the second for a redelivery of the first.
    body = json.dumps({"event_type": "Checkout", "user_id": "customer-7", "page_name": "Cart"}).encode()

    answers = [post("/fullstory", body), post("/fullstory", body)]

    assert [(a["status"], a["reason"]) for a in answers] == [(200, "queued"), (200, "queued")]
    assert play_event_source_mapping(sqs, queue_mode["url"]) == []
    assert [(e["eventTypeId"], e["key"]) for e in upstream.fme_events()] == [("Checkout", "customer-7")] * 2
