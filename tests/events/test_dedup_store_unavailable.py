"""FS2SPLIT_DEDUP_ON_STORE_ERROR, both ways, with the shared store unreachable (a closed port):
``deliver`` sends once and warns; ``refuse`` answers 503 so FullStory retries, and sends nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request
from tests.conftest import event_bytes
from tests.support.emulators import (
    AWS_TEST_ENV,
    PROJECT,
    create_table,
    dynamodb_env,
    free_port,
    moto_skip_reason,
    start_moto,
)
from tests.support.upstream import FakeUpstream, Fault

BODY = event_bytes("fullstory-custom-event.json")


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_user("6915774531905556", "customer-42")
        yield server


@pytest.fixture(params=["dynamodb", "firestore"])
def unreachable_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    if request.param == "dynamodb":
        for name, value in AWS_TEST_ENV.items():
            monkeypatch.setenv(name, value)
        return {"FS2SPLIT_DEDUP_STORE": "dynamodb", "AWS_ENDPOINT_URL_DYNAMODB": f"http://{closed}", **AWS_TEST_ENV}
    return {"FS2SPLIT_DEDUP_STORE": "firestore", "FIRESTORE_EMULATOR_HOST": closed, "GOOGLE_CLOUD_PROJECT": PROJECT}


def bridge_env(up: FakeUpstream, store: dict[str, str], policy: str) -> dict[str, str]:
    return {
        "SPLIT_API_KEY": "sdk-key-dedup",
        "FULLSTORY_API_KEY": "fs-key-dedup",
        "SPLIT_EVENTS_URL": up.split_events_url,
        "FULLSTORY_API_URL": up.fullstory_url,
        "FS2SPLIT_DEDUP_ON_STORE_ERROR": policy,
        **store,
    }


def log_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_unreachable_store_with_refuse_answers_503_with_retry_after_and_sends_nothing(
    up: FakeUpstream, unreachable_store: dict[str, str], make_instance: Any
) -> None:
    bridge = make_instance(**bridge_env(up, unreachable_store, "refuse"))

    response = handle(Request("POST", "/fullstory", {}, {}, BODY), bridge)

    assert (response.status, response.body["reason"]) == (503, "dedup_unavailable")
    assert 1 <= int(response.headers["Retry-After"]) <= 10
    assert up.fme_events() == []


def test_unreachable_store_with_deliver_sends_once_and_logs_a_warning(
    up: FakeUpstream, unreachable_store: dict[str, str], make_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge = make_instance(**bridge_env(up, unreachable_store, "deliver"))

    response = handle(Request("POST", "/fullstory", {}, {}, BODY), bridge)

    assert (response.status, response.body["reason"]) == (200, "delivered")
    assert len(up.fme_events()) == 1
    warnings = [line for line in log_lines(capsys.readouterr().out) if line.get("reason") == "dedup_unavailable"]
    assert warnings
    assert all(line["severity"] == "WARNING" for line in warnings)


def test_the_store_error_is_the_default_answer_deliver(
    up: FakeUpstream, unreachable_store: dict[str, str], make_instance: Any
) -> None:
    env = bridge_env(up, unreachable_store, "deliver")
    del env["FS2SPLIT_DEDUP_ON_STORE_ERROR"]
    bridge = make_instance(**env)

    response = handle(Request("POST", "/fullstory", {}, {}, BODY), bridge)

    assert response.body["reason"] == "delivered"


def test_no_secret_reaches_the_refusal_or_the_log(
    up: FakeUpstream, unreachable_store: dict[str, str], make_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge = make_instance(**bridge_env(up, unreachable_store, "refuse"))

    response = handle(Request("POST", "/fullstory", {}, {}, BODY), bridge)

    seen = json.dumps(response.body) + capsys.readouterr().out
    assert "sdk-key-dedup" not in seen
    assert "fs-key-dedup" not in seen
    assert AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"] not in seen


def test_an_unknown_store_name_is_a_settings_error_that_names_the_setting(make_instance: Any) -> None:
    bridge = make_instance(FS2SPLIT_DEDUP_STORE="redis")

    response = handle(Request("POST", "/fullstory", {}, {}, BODY), bridge)

    assert (response.status, response.body["reason"]) == (503, "settings_invalid")
    assert "FS2SPLIT_DEDUP_STORE" in response.body["message"]


def test_a_store_lost_after_delivery_leaves_the_answer_delivered_and_logs_a_warning(
    up: FakeUpstream, make_instance: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = moto_skip_reason()
    if reason:
        pytest.skip(reason)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    server = start_moto()
    try:
        create_table(server, "fs2split-dedup")
        bridge = make_instance(**bridge_env(up, dynamodb_env(server, "fs2split-dedup"), "refuse"))
        up.script("POST", "/api/events/bulk", Fault(delay=1.0))  # time to lose the store mid-delivery
        answers: list[Any] = []
        sender = threading.Thread(
            target=lambda: answers.append(handle(Request("POST", "/fullstory", {}, {}, BODY), bridge))
        )
        sender.start()
        assert up.wait_for(lambda: bool(up.calls("POST", "/api/events/bulk")), timeout=10)
    finally:
        server.stop()  # the claim is made; marking it done will fail
    sender.join()

    assert (answers[0].status, answers[0].body["reason"]) == (200, "delivered")
    warnings = [line for line in log_lines(capsys.readouterr().out) if line.get("reason") == "dedup_unavailable"]
    assert [line["severity"] for line in warnings] == ["WARNING"]
    assert "did not record done" in warnings[0]["message"]
