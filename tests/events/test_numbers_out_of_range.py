"""Integers beyond float range (JSON allows them; Python parses them exactly) are invalid input or a
dropped value, never a 500. Each case was a 500 on every redelivery (issue 13)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from tests.conftest import event_json

HUGE = "1" + "0" * 400  # beyond float range: math.isfinite() of it raises OverflowError


@pytest.fixture
def dry_run(make_instance: Any) -> Instance:
    return make_instance(FS2SPLIT_KEY_FALLBACK="fullstory_user_id")


def post(instance: Instance, body: str) -> Response:
    return handle(Request("POST", "/fullstory", {}, {}, body.encode()), instance)


def custom_event(**data: Any) -> str:
    document = event_json("fullstory-custom-event.json")
    document["data"].update(data)
    return json.dumps(document)


def test_a_huge_integer_timestamp_is_a_400(dry_run: Instance) -> None:
    body = custom_event(timestamp=0).replace('"timestamp": 0', f'"timestamp": {HUGE}')

    response = post(dry_run, body)

    assert (response.status, response.body["reason"]) == (400, "not_a_webhook")
    assert "timestamp" in response.body["message"]


@pytest.mark.parametrize("name", ["split.value", "split.value_int"])
def test_a_huge_integer_value_is_dropped_and_the_event_still_goes(dry_run: Instance, name: str) -> None:
    body = custom_event(properties={name: 0}).replace(f'"{name}": 0', f'"{name}": {HUGE}')

    response = post(dry_run, body)

    assert (response.status, response.body["reason"]) == (200, "dry_run")
    assert response.body["events"][0]["value"] is None


def test_a_huge_integer_streams_timestamp_is_a_400(dry_run: Instance) -> None:
    document = event_json("fullstory-streams-event.json")
    document["timestamp"] = 0
    body = json.dumps(document).replace('"timestamp": 0', f'"timestamp": {HUGE}')

    response = post(dry_run, body)

    assert (response.status, response.body["reason"]) == (400, "not_a_webhook")


def test_a_huge_integer_property_is_trimmed_not_sent(dry_run: Instance) -> None:
    body = custom_event(properties={"big_int": 0, "kept_int": 7}).replace('"big_int": 0', f'"big_int": {HUGE}')

    response = post(dry_run, body)

    assert (response.status, response.body["reason"]) == (200, "dry_run")
    assert response.body["events"][0]["properties"] == {"kept_int": 7}
