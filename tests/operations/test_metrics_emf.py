"""Every request's log line carries metrics: on Lambda a CloudWatch Embedded Metric Format block that
CloudWatch accepts, with only the route and the outcome class as dimensions, never anything a sender sent.

The schema below is written from CloudWatch's published EMF specification ("Specification: Embedded metric
format", Amazon CloudWatch User Guide): the root holds an ``_aws`` metadata object with an integer
``Timestamp`` and ``CloudWatchMetrics``, an array of MetricDirectives (``Namespace``, ``Dimensions`` as an
array of dimension sets of at most 30 names, ``Metrics`` of at most 100 MetricDefinitions with ``Name``,
an optional ``Unit`` from CloudWatch's unit list and an optional ``StorageResolution`` of 1 or 60).
The rules the JSON schema cannot say (each referenced member present in the root; dimension values
strings; metric values numbers) are checked by ``assert_valid_emf``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

import main
from fs2split import metrics
from fs2split.app import handle
from fs2split.http_types import Request
from tests.conftest import event_bytes, event_json
from tests.support.upstream import FakeUpstream, Fault
from tests.test_entry_points import lambda_event

UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]  # fmt: skip

EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {"_aws": {"$ref": "#/definitions/metadata"}},
    "definitions": {
        "metadata": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {"type": "array", "items": {"$ref": "#/definitions/directive"}},
            },
        },
        "directive": {
            "type": "object",
            "required": ["Namespace", "Dimensions", "Metrics"],
            "additionalProperties": False,
            "properties": {
                "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": r"^(.*[^\s].*)$"},
                "Dimensions": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 30,
                        "items": {"type": "string", "minLength": 1, "maxLength": 250},
                    },
                },
                "Metrics": {"type": "array", "maxItems": 100, "items": {"$ref": "#/definitions/metric"}},
            },
        },
        "metric": {
            "type": "object",
            "required": ["Name"],
            "additionalProperties": False,
            "properties": {
                "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                "Unit": {"type": "string", "enum": UNITS},
                "StorageResolution": {"type": "integer", "enum": [1, 60]},
            },
        },
    },
}

ROUTES = {"fullstory", "split_impressions", "healthz", "drain"}


def assert_valid_emf(line: dict[str, Any]) -> None:
    jsonschema.validate(line, EMF_SCHEMA)
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(line.get(name), str), name
                assert 0 < len(line[name]) <= 1024, name
        for metric in directive["Metrics"]:
            value = line.get(metric["Name"])
            assert isinstance(value, int | float), metric["Name"]
            assert not isinstance(value, bool), metric["Name"]


def dimension_values(line: dict[str, Any]) -> dict[str, str]:
    names = {n for d in line["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"] for n in s}
    return {name: line[name] for name in names}


def request_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(raw) for raw in text.splitlines() if raw.startswith("{")]
    return [line for line in lines if "status" in line or line.get("route") == "drain"]


@pytest.fixture
def on_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fs2split")


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_user("101", "customer-private-4711")
        yield server


@pytest.fixture
def keys_to(monkeypatch: pytest.MonkeyPatch, up: FakeUpstream) -> FakeUpstream:
    for name, value in {
        "SPLIT_API_KEY": "sdk-key",
        "FULLSTORY_API_KEY": "fs-key",
        "SPLIT_EVENTS_URL": up.split_events_url,
        "FULLSTORY_API_URL": up.fullstory_url,
        "FS2SPLIT_RETRY_BUDGET_SECONDS": "1",
        "FS2SPLIT_READ_TIMEOUT_SECONDS": "0.5",
    }.items():
        monkeypatch.setenv(name, value)
    return up


def private_webhook() -> bytes:
    document = event_json("fullstory-custom-event.json")
    document["data"]["name"] = "Checkout Private Name"
    document["data"]["sessionUrl"] = "https://app.fullstory.com/ui/TN1/session/101:555"
    document["data"]["properties"] = {"email_str": "someone-private@example.com", "plan_str": "plan-private-99"}
    return json.dumps(document).encode()


def lambda_post(body: bytes, path: str = "/fullstory") -> int:
    return int(main.lambda_handler(lambda_event("lambda-function-url.json", body, path=path), None)["statusCode"])


def test_a_delivered_webhook_on_lambda_writes_an_emf_block_cloudwatch_accepts(
    on_lambda: None, keys_to: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lambda_post(private_webhook()) == 200

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    names = {m["Name"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names == {"requests", "latency_ms", "events_sent"}
    assert (line["requests"], line["events_sent"]) == (1, 1)
    assert dimension_values(line) == {"route": "fullstory", "outcome": "delivered"}


def test_the_emf_block_holds_no_user_id_event_name_or_property(
    on_lambda: None, keys_to: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    lambda_post(private_webhook())

    (line,) = request_lines(capsys.readouterr().out)
    block = json.dumps(line["_aws"]) + json.dumps(dimension_values(line))
    for private in ("customer-private-4711", "101", "Checkout Private Name", "someone-private", "plan-private-99"):
        assert private not in block
    assert set(dimension_values(line)) <= {"route", "outcome"}


def test_totals_need_only_the_outcome_dimension(on_lambda: None, capsys: pytest.CaptureFixture[str]) -> None:
    lambda_post(event_bytes("fullstory-custom-event.json"))

    (line,) = request_lines(capsys.readouterr().out)
    dimension_sets = [s for d in line["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"]]
    assert ["outcome"] in dimension_sets
    assert ["route", "outcome"] in dimension_sets


@pytest.mark.parametrize(
    ("body", "path", "outcome"),
    [
        (b'{"not json', "/fullstory", "refused"),
        (b"{}", "/nowhere", "refused"),
    ],
)
def test_refusals_are_counted_as_refused(
    on_lambda: None, capsys: pytest.CaptureFixture[str], body: bytes, path: str, outcome: str
) -> None:
    lambda_post(body, path)

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    assert line["outcome"] == outcome


def test_a_dry_run_is_counted_as_dropped_not_delivered(on_lambda: None, capsys: pytest.CaptureFixture[str]) -> None:
    lambda_post(event_bytes("fullstory-custom-event.json"))

    (line,) = request_lines(capsys.readouterr().out)
    assert (line["reason"], line["outcome"]) == ("dry_run", "dropped")
    assert line["events_sent"] == 0


def test_an_fme_outage_is_counted_as_retry(
    on_lambda: None, keys_to: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    keys_to.script("POST", "/api/events/bulk", *[Fault(status=503)] * 10)

    assert lambda_post(private_webhook()) == 503

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    assert line["outcome"] == "retry"


def test_a_refused_fme_key_is_counted_as_error(
    on_lambda: None, keys_to: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    keys_to.script("POST", "/api/events/bulk", Fault(status=401))

    assert lambda_post(private_webhook()) == 502

    (line,) = request_lines(capsys.readouterr().out)
    assert (line["reason"], line["outcome"]) == ("fme_unauthorized", "error")


def test_an_event_the_lambda_adapter_refuses_itself_still_carries_the_block(
    on_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    main.lambda_handler({"Records": [{"eventSource": "aws:sqs"}]}, None)

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    # No route was matched, so the block counts the line in the totals only.
    assert dimension_values(line) == {"outcome": "refused"}


def test_metrics_off_removes_the_block(
    on_lambda: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FS2SPLIT_METRICS", "off")

    lambda_post(event_bytes("fullstory-custom-event.json"))

    (line,) = request_lines(capsys.readouterr().out)
    assert "_aws" not in line


def test_outside_lambda_the_line_has_the_outcome_class_but_no_block(
    make_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handle(Request("POST", "/fullstory", {}, {}, b"[]"), make_instance())

    (line,) = request_lines(capsys.readouterr().out)
    assert "_aws" not in line
    assert line["outcome"] == "refused"


def test_emf_can_be_asked_for_outside_lambda_under_its_own_namespace(
    make_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    instance = make_instance(FS2SPLIT_METRICS="emf", FS2SPLIT_METRICS_NAMESPACE="acme/fs2split")

    handle(Request("GET", "/healthz", {}, {}, b""), instance)

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    assert {d["Namespace"] for d in line["_aws"]["CloudWatchMetrics"]} == {"acme/fs2split"}
    assert dimension_values(line)["route"] in ROUTES


@pytest.mark.parametrize(
    ("name", "value"), [("FS2SPLIT_METRICS", "prometheus"), ("FS2SPLIT_METRICS_NAMESPACE", "AWS/Lambda")]
)
def test_an_unusable_metrics_setting_is_a_settings_error_naming_it(make_instance: Any, name: str, value: str) -> None:
    answer = handle(
        Request("POST", "/fullstory", {}, {}, event_bytes("fullstory-custom-event.json")),
        make_instance(**{name: value}),
    )

    assert (answer.status, answer.body["reason"]) == (503, "settings_invalid")
    assert name in answer.body["message"]


def test_impressions_written_to_fullstory_are_counted_as_events_sent_on_their_route(
    make_instance: Any, up: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    instance = make_instance(FS2SPLIT_METRICS="emf", FULLSTORY_API_KEY="fs-key", FULLSTORY_API_URL=up.fullstory_url)
    body = event_bytes("split-impressions-webhook.json")

    handle(Request("POST", "/split/impressions", {}, {}, body), instance)

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    assert line["events_sent"] == len(up.fullstory_events()) == 1
    assert dimension_values(line) == {"route": "split_impressions", "outcome": "delivered"}


def test_an_instance_with_unusable_settings_still_reports_its_503s_on_lambda(
    on_lambda: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FS2SPLIT_UID_CACHE_TTL_SECONDS", "an hour")

    assert lambda_post(event_bytes("fullstory-custom-event.json")) == 503

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    assert (line["reason"], line["outcome"]) == ("settings_invalid", "retry")


def test_the_drain_run_line_carries_its_counts_as_emf_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from fs2split import logs

    logs.configure()
    fields = metrics.line_metrics(True, "fs2split").for_drain(
        messages=12, events_sent=10, failed=2, oldest_message_age_s=93.25
    )
    logs.emit(logging.INFO, "drain run", **fields)

    (line,) = request_lines(capsys.readouterr().out)
    assert_valid_emf(line)
    names = {m["Name"]: m["Unit"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert names == {"messages": "Count", "events_sent": "Count", "failed": "Count", "oldest_message_age_s": "Seconds"}
    assert (line["messages"], line["events_sent"], line["failed"], line["oldest_message_age_s"]) == (12, 10, 2, 93.25)
    assert dimension_values(line) == {"route": "drain"}


def test_the_lambda_drain_writes_its_run_line_with_the_drain_metrics(
    on_lambda: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Unusable settings: the drain gives the message back to the queue without any AWS call, and says so.
    from fs2split import instance as instance_module

    monkeypatch.setenv("FS2SPLIT_DRAIN_BACKOFF_SECONDS", "0")
    instance_module.reset()
    try:
        record = {"messageId": "m-1", "receiptHandle": "r-1", "body": "{}", "attributes": {}}
        answer = main.lambda_drain({"Records": [record]}, None)
    finally:
        instance_module.reset()

    (line,) = [line for line in request_lines(capsys.readouterr().out) if line.get("route") == "drain"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert_valid_emf(line)
    assert (line["messages"], line["failed"], line["reason"]) == (1, 1, "settings_invalid")
    names = {m["Name"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"messages", "events_sent", "failed", "oldest_message_age_s"} <= names
