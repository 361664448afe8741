"""Misbehaving upstreams (FME's events API, FullStory's users API), against the loopback FakeUpstream: what
the sender hears and what the log says. Each test is one of issue 13's findings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream, Fault

BULK = "/api/events/bulk"
USERS = "/v2/users/"
SDK_KEY = "sdk-key-0123456789"
FS_KEY = "fs-key-abcdefghij"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_user("100", "customer-0")
        yield server


@pytest.fixture
def bridge(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(
        SPLIT_API_KEY=SDK_KEY,
        FULLSTORY_API_KEY=FS_KEY,
        SPLIT_EVENTS_URL=up.split_events_url,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="3",
        FS2SPLIT_READ_TIMEOUT_SECONDS="0.5",
        FS2SPLIT_RETRY_BACKOFF_SECONDS="0.01",
    )


def webhook(user: str = "100", marker: int = 0) -> bytes:
    document = event_json("fullstory-custom-event.json")
    document["data"]["sessionUrl"] = f"https://app.fullstory.com/ui/TN1/session/{user}:1"
    document["data"]["properties"] = {"marker_int": marker} if marker else {}
    return json.dumps(document).encode()


def deliver(bridge: Instance, body: bytes) -> Response:
    return handle(Request("POST", "/fullstory", {}, {}, body), bridge)


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_malformed_200_from_the_users_api_is_a_503_and_the_redelivery_is_delivered(
    up: FakeUpstream, bridge: Instance
) -> None:
    up.script("GET", USERS, Fault(status=200, body="<html>maintenance</html>"))

    first = deliver(bridge, webhook())
    second = deliver(bridge, webhook())

    assert (first.status, first.body["reason"]) == (503, "fullstory_unavailable")
    assert (second.status, second.body["reason"]) == (200, "delivered")
    assert [event["key"] for event in up.fme_events()] == ["customer-0"]


def test_a_truncated_json_200_from_the_users_api_is_not_an_anonymous_user(up: FakeUpstream, bridge: Instance) -> None:
    up.script("GET", USERS, Fault(status=200, body='{"id": "100", "uid": "cust'))

    response = deliver(bridge, webhook())

    assert (response.status, response.body["reason"]) == (503, "fullstory_unavailable")
    assert up.fme_events() == []


def test_a_user_document_whose_id_changed_is_still_a_user(up: FakeUpstream, bridge: Instance) -> None:
    up.add_user("100", "customer-0", id="200")  # FullStory answers with the identified user's id

    response = deliver(bridge, webhook())

    assert response.body["reason"] == "delivered"


def test_fme_read_timeout_is_posted_once_and_answered_503(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(delay=1.0))  # longer than the 0.5 s read timeout; FME stores it anyway

    response = deliver(bridge, webhook())

    assert (response.status, response.body["reason"]) == (503, "fme_unavailable")
    assert len(up.calls("POST", BULK)) == 1


def test_fme_connection_reset_is_retried_and_delivered_once(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(reset=True), Fault(reset=True))

    response = deliver(bridge, webhook())

    assert response.body["reason"] == "delivered"
    assert len(up.fme_events()) == 1


def test_a_pooled_connection_the_server_closed_is_retried(up: FakeUpstream, bridge: Instance) -> None:
    # The first POST leaves a keep-alive connection in the pool; the next one, sent on it, is reset unanswered.
    deliver(bridge, webhook())
    up.script("POST", BULK, Fault(reset=True))

    response = deliver(bridge, webhook(marker=2))

    assert response.body["reason"] == "delivered"
    assert len(up.fme_events()) == 2


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 503])
def test_fme_statuses_that_mean_not_now_are_503_for_the_sender(up: FakeUpstream, bridge: Instance, status: int) -> None:
    up.script("POST", BULK, *[Fault(status=status)] * 10)

    response = deliver(bridge, webhook())

    assert (response.status, response.body["reason"]) == (503, "fme_unavailable")


@pytest.mark.parametrize("status", [301, 302, 401, 403])
def test_fme_redirects_and_key_refusals_are_502_so_the_sender_retries_after_the_fix(
    up: FakeUpstream, bridge: Instance, status: int
) -> None:
    up.script("POST", BULK, Fault(status=status, headers={"Location": "http://127.0.0.1:9/"}))

    response = deliver(bridge, webhook())

    assert (response.status, response.body["reason"]) == (502, "fme_unauthorized")


@pytest.mark.parametrize(("header", "expected"), [("inf", "3600"), ("1e400", "3600"), ("-5", "1"), ("nan", None)])
def test_an_absurd_retry_after_from_fme_is_clamped_not_a_crash(
    up: FakeUpstream, bridge: Instance, header: str, expected: str | None
) -> None:
    up.script("POST", BULK, *[Fault(status=503, headers={"Retry-After": header})] * 10)

    response = deliver(bridge, webhook())

    assert (response.status, response.headers.get("Retry-After")) == (503, expected)


def test_a_lone_surrogate_in_an_upstream_message_is_a_json_answer_and_a_log_line(
    up: FakeUpstream, bridge: Instance, capsys: pytest.CaptureFixture[str]
) -> None:
    up.script("POST", BULK, Fault(status=400, body='{"message": "bad \\ud800 event"}'))

    response = deliver(bridge, webhook())

    assert (response.status, response.body["reason"]) == (422, "fme_rejected")
    response.body_bytes().decode("utf-8")  # encodable: the adapters send exactly these bytes
    [line] = [line for line in log_lines(capsys) if line.get("route") == "fullstory"]
    assert line["reason"] == "fme_rejected"


def test_a_lone_surrogate_in_a_property_name_keeps_the_log_line(
    bridge: Instance, capsys: pytest.CaptureFixture[str]
) -> None:
    body = webhook().replace(b'"properties": {}', b'"properties": {"\\ud800_str": "x", "x_str": "%s"}' % (b"a" * 300))

    deliver(bridge, body)

    out = capsys.readouterr().out
    assert "Logging error" not in out
    assert any('"route": "fullstory"' in line for line in out.splitlines())


def test_fme_error_text_is_cut_to_300_characters(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(status=400, body="x" * 5000))

    response = deliver(bridge, webhook())

    assert len(response.body["message"]) <= 300 + len("FME refused the event: HTTP 400: ")


def test_a_hanging_fme_against_a_3s_budget_is_answered_within_4s(up: FakeUpstream, make_instance: Any) -> None:
    bridge = make_instance(
        SPLIT_API_KEY=SDK_KEY,
        FULLSTORY_API_KEY=FS_KEY,
        SPLIT_EVENTS_URL=up.split_events_url,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="3",
        FS2SPLIT_READ_TIMEOUT_SECONDS="30",
        FS2SPLIT_CONNECT_TIMEOUT_SECONDS="30",
    )
    up.script("POST", BULK, Fault(delay=60))

    started = time.monotonic()
    response = deliver(bridge, webhook())

    assert response.status == 503
    assert time.monotonic() - started < 4
