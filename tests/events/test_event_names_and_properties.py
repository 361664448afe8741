"""The naming rule a person defining an FME metric can predict from the docs (docs/fullstory-to-fme.md), and the
property limits FME applies."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from fs2split.app import handle
from fs2split.events.event_type import to_event_type
from fs2split.events.properties import flatten, size_of
from fs2split.http_types import Request
from tests.conftest import event_json
from tests.support.fme_judge import assert_fme_accepts


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("checkout_completed", "checkout_completed"),
        ("cart:add.v2-beta", "cart:add.v2-beta"),
        ("Product Added", "Product_Added"),
        ("Order  Placed!", "Order__Placed_"),
        ("Café Visited", "Cafe_Visited"),
        ("_private", "fs_private"),
        ("-dash", "fs-dash"),
        ("日本", "fs__"),
    ],
)
def test_invalid_names_map_by_the_documented_rule(name: str, event_type: str) -> None:
    assert to_event_type(name) == event_type


def test_names_differing_in_spacing_or_punctuation_stay_distinct() -> None:
    assert [to_event_type(n) for n in ("a b", "a  b", "a b!", "a.b")] == ["a_b", "a__b", "a_b_", "a.b"]


def test_names_differing_only_in_which_invalid_character_collide_as_documented() -> None:
    assert to_event_type("a b") == to_event_type("a/b") == to_event_type("a_b") == "a_b"


def test_long_names_keep_a_readable_prefix_and_stay_distinct() -> None:
    first = "Checkout " + "x" * 100 + " one"
    second = "Checkout " + "x" * 100 + " two"

    mapped = to_event_type(first), to_event_type(second)

    assert mapped[0] != mapped[1]
    assert all(len(m) == 80 and m.startswith("Checkout_xxx") for m in mapped)
    assert to_event_type(first) == mapped[0]  # stable across calls and processes


def test_more_than_300_properties_are_trimmed_to_300_in_order() -> None:
    flat = flatten({f"p{n:03d}_int": n for n in range(350)})

    assert len(flat.properties) == 300
    assert list(flat.properties)[-1] == "p299_int"
    assert flat.trimmed == tuple(f"p{n:03d}_int" for n in range(300, 350))


def test_size_is_counted_as_the_stricter_javascript_sdk_counts_it() -> None:
    # 16,000 characters: 16 KB for the Python SDK, 32 KB for the JavaScript SDK (2 bytes a char).
    flat = flatten({"big_str": "x" * 16_000, "small_str": "ok"})

    assert "big_str" not in flat.properties
    assert flat.properties == {"small_str": "ok"}
    assert size_of(flat.properties) <= 32_768


def test_trimmed_properties_are_logged_by_name(make_instance: Any, capsys: pytest.CaptureFixture[str]) -> None:
    document = event_json("fullstory-custom-event.json")
    document["data"]["properties"] = {"huge_str": "x" * 20_000, "kept_str": "y"}

    response = handle(Request("POST", "/fullstory", {}, {}, json.dumps(document).encode()), make_instance())

    [event] = response.body["events"]
    assert event["properties"] == {"kept_str": "y"}
    assert_fme_accepts(event)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [warning] = [line for line in lines if line["message"].startswith("properties trimmed")]
    assert warning["trimmed"] == ["huge_str"]
    assert "x" * 100 not in json.dumps(lines)


def test_unrepresentable_values_are_dropped_not_sent() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["k"] = {"leaf": 1}
        node = node["k"]

    flat = flatten({"deep": deep, "ok_int": 1})

    assert flat.properties["ok_int"] == 1
    assert any(name.startswith("deep.") for name in flat.trimmed)


def test_one_webhook_makes_one_fme_request_for_one_event(make_instance: Any) -> None:
    with responses.RequestsMock() as api:
        api.post("https://events.split.io/api/events/bulk", status=202)
        instance = make_instance(SPLIT_API_KEY="k", FS2SPLIT_KEY_FALLBACK="fullstory_user_id")
        document = event_json("fullstory-custom-event.json")

        handle(Request("POST", "/", {}, {}, json.dumps(document).encode()), instance)

        [call] = api.calls
        assert len(json.loads(call.request.body)) == 1
