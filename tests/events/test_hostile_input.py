"""Property-based tests of the webhook parser: no input produces a 5xx, a crash, or an event
FME would refuse (the real splitio validator judges), and normal service follows a storm."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fs2split.app import handle
from fs2split.events.event_type import is_valid_event_type, to_event_type
from fs2split.events.properties import MAX_SIZE, flatten, size_of
from fs2split.http_types import Request
from fs2split.instance import Instance
from tests.conftest import event_bytes
from tests.support.fme_judge import assert_fme_accepts

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
names = st.text(min_size=1, max_size=250).filter(lambda s: s.strip())
session_urls = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.builds(
        lambda u, s, sep: f"https://app.fullstory.com/ui/TN1/session/{u}{sep}{s}",
        st.from_regex(r"[0-9]{1,19}", fullmatch=True),
        st.from_regex(r"[0-9]{1,19}", fullmatch=True),
        st.sampled_from([":", "%3A", "%3a"]),
    ),
)
timestamps = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)
custom_webhooks = st.fixed_dictionaries(
    {
        "eventName": st.just("recording.event.custom"),
        "version": st.integers(),
        "data": st.fixed_dictionaries(
            {
                "name": names,
                "properties": st.dictionaries(st.text(max_size=30), json_values, max_size=12),
                "sessionUrl": session_urls,
                "timestamp": timestamps,
            }
        ),
    }
)
any_json = json_values.map(lambda v: json.dumps(v).encode())


@pytest.fixture(scope="module")
def dry_run() -> Instance:
    return Instance.from_env({})


def assert_safe(instance: Instance, body: bytes) -> None:
    response = handle(Request("POST", "/fullstory", {}, {}, body), instance)
    assert response.status < 500, response.body
    assert "\n" not in response.body["message"]
    for event in response.body.get("events", []):
        assert_fme_accepts(event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(custom_webhooks)
def test_any_custom_event_is_either_a_valid_fme_event_or_a_clean_refusal(dry_run: Instance, webhook: Any) -> None:
    assert_safe(dry_run, json.dumps(webhook).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | any_json)
def test_arbitrary_bytes_never_cause_a_server_error(dry_run: Instance, body: bytes) -> None:
    assert_safe(dry_run, body)


@settings(max_examples=300, deadline=None)
@given(names)
def test_every_name_maps_to_an_event_type_fme_accepts(name: str) -> None:
    assert is_valid_event_type(to_event_type(name))


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-zA-Z0-9][-_.:a-zA-Z0-9]{0,79}", fullmatch=True))
def test_valid_names_pass_unchanged(name: str) -> None:
    assert to_event_type(name) == name


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=300), json_values, max_size=400))
def test_flattened_properties_always_fit_the_strictest_sdk_limit(properties: dict[str, Any]) -> None:
    flat = flatten(properties).properties
    assert len(flat) <= 300
    assert size_of(flat) <= MAX_SIZE


def test_deeply_nested_and_huge_bodies_are_refused_cleanly(dry_run: Instance) -> None:
    assert_safe(dry_run, b"[" * 100_000 + b"]" * 100_000)
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(200):
        node["k"] = {}
        node = node["k"]
    body = {"eventName": "recording.event.custom", "data": {"name": "deep", "properties": deep, "sessionUrl": None}}
    assert_safe(dry_run, json.dumps(body).encode())


def test_normal_service_follows_a_storm(dry_run: Instance) -> None:
    for n in range(300):
        handle(Request("POST", "/fullstory", {}, {}, bytes([n % 256]) * n), dry_run)

    response = handle(Request("POST", "/fullstory", {}, {}, event_bytes("fullstory-custom-event.json")), dry_run)

    assert (response.status, response.body["reason"]) == (200, "dry_run")
