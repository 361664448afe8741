"""The run a newcomer starts (no key at all) shows what it would do in both directions and says plainly that it
sends nothing; a function with an FME key but no FullStory key still refuses to acknowledge impressions. Also
the answers a person reads when a body or a key is wrong."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from fs2split.logs import LOGGER_NAME
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream, Fault

PATH = "/split/impressions"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def keyless(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(FULLSTORY_API_URL=up.fullstory_url, SPLIT_EVENTS_URL=up.split_events_url)


def post(instance: Instance, body: Any, path: str = PATH) -> Response:
    return handle(Request("POST", path, {}, {}, json.dumps(body).encode()), instance)


def test_given_no_key_at_all_then_impressions_are_a_dry_run_showing_the_events_and_nothing_is_sent(
    up: FakeUpstream, keyless: Instance
) -> None:
    response = post(keyless, event_json("split-impressions-webhook.json"))

    assert (response.status, response.body["reason"]) == (200, "dry_run")
    [event] = response.body["events"]
    assert (event["name"], event["user"], event["properties"]["impression"]["treatment"]) == (
        "split_evaluation",
        {"uid": "customer-123"},
        "on",
    )
    assert up.requests == []


def test_given_no_key_at_all_then_an_empty_array_is_a_dry_run_with_no_events(keyless: Instance) -> None:
    response = post(keyless, [])

    assert (response.status, response.body["reason"], response.body["events"]) == (200, "dry_run", [])


def test_given_no_key_at_all_then_healthz_says_the_function_sends_nothing(keyless: Instance) -> None:
    response = handle(Request("GET", "/healthz"), keyless)

    assert (response.status, response.body["sends"]) == (200, "nothing")
    assert "sends nothing" in response.body["message"]
    assert response.body["integrations"]["fme_to_fullstory"]["mode"] == "dry_run"


def test_given_keys_then_healthz_says_live_and_claims_nothing_about_sending_nothing(
    up: FakeUpstream, make_instance: Any
) -> None:
    bridge = make_instance(SPLIT_API_KEY="fme", FULLSTORY_API_KEY="fs", FULLSTORY_API_URL=up.fullstory_url)

    body = handle(Request("GET", "/healthz"), bridge).body

    assert ("sends" in body, body["integrations"]["fme_to_fullstory"]["mode"]) == (False, "live")


def test_given_no_key_at_all_then_the_start_up_log_line_says_nothing_is_sent(make_instance: Any) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(LOGGER_NAME)
    handler = Collect()
    logger.addHandler(handler)
    try:
        make_instance()
    finally:
        logger.removeHandler(handler)

    assert any("no key" in line and "sends nothing" in line for line in lines), lines


def test_given_fullstory_refuses_every_impression_as_invalid_then_200_undeliverable_not_ignored(
    up: FakeUpstream, make_instance: Any
) -> None:
    bridge = make_instance(FULLSTORY_API_KEY="fs-key", FULLSTORY_API_URL=up.fullstory_url)
    up.script("POST", "/v2/events", Fault(status=400, body={"message": "uid is too long"}))

    response = post(bridge, event_json("split-impressions-webhook.json"))

    assert (response.status, response.body["reason"], response.body["undeliverable"]) == (200, "undeliverable", 1)
    assert "uid is too long" in response.body["message"]


def test_given_a_guessed_body_then_the_answer_names_the_fields_fme_uses(up: FakeUpstream, make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY="fs-key", FULLSTORY_API_URL=up.fullstory_url)

    response = post(bridge, [{"keyName": "customer-1", "feature": "new_checkout", "treatment": "on"}])

    assert (response.status, response.body["reason"], response.body["problems"]) == (200, "ignored", {"no_key": 1})
    assert "key, split and treatment" in response.body["message"]
    assert up.requests == []


def test_given_an_unknown_path_then_the_404_names_every_route(keyless: Instance) -> None:
    response = post(keyless, {}, path="/fulstory")

    assert response.status == 404
    assert all(route in response.body["message"] for route in ("/fullstory", "/split/impressions", "/healthz"))


def test_given_a_wrong_token_then_the_message_reads_as_a_sentence(make_instance: Any) -> None:
    bridge = make_instance(SPLIT_IMPRESSIONS_TOKEN="right-token")

    response = handle(Request("POST", PATH, {}, {"token": "wrong"}, b"[]"), bridge)

    assert (response.status, response.body["message"]) == (
        401,
        "the token query parameter does not match SPLIT_IMPRESSIONS_TOKEN",
    )
