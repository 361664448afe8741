"""FullStory Streams as they really arrive, through both entry points in main.py, against a loopback
FME: the flat Customizable Payload, the documented Advanced JSON Mapping, and any other shape read
through the mapping's ``streams`` section. Every event sent is judged by the real splitio validator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import event_bytes, event_json
from tests.support.entry_points import ENTRY_POINTS, Answer, post
from tests.support.fme_judge import assert_fme_accepts
from tests.support.fullstory_mapping import evaluate
from tests.support.upstream import FakeUpstream

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORDER_TIME_MS = 1793629920120  # 2026-11-02T14:32:00.120Z, the samples' event_time
PERSONAL = ("customer@example.com", "A Customer", "203.0.113.42")  # the samples' email, name and IP


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture(params=ENTRY_POINTS)
def entry(request: pytest.FixtureRequest, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SPLIT_API_KEY", "sdk-key")
    monkeypatch.setenv("SPLIT_EVENTS_URL", up.split_events_url)
    monkeypatch.setenv("FULLSTORY_API_URL", up.fullstory_url)
    return str(request.param)


def send(entry: str, body: bytes | dict[str, Any], **headers: str) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return post(entry, "/fullstory", raw, headers)


def flat(**changes: Any) -> dict[str, Any]:
    document = event_json("fullstory-stream-flat.json")
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


def documented_mapping_body(context: dict[str, Any] | None = None) -> dict[str, Any]:
    template = json.loads((EXAMPLES / "fullstory-stream-mapping.json").read_text())
    return evaluate(template, context or event_json("fullstory-stream-context.json"))  # type: ignore[no-any-return]


# --- the flat Customizable Payload ------------------------------------------------------------------------------


def test_flat_stream_is_delivered_keyed_by_its_user_id_with_its_name_and_time(entry: str, up: FakeUpstream) -> None:
    answer = send(entry, event_bytes("fullstory-stream-flat.json"))

    assert (answer.status, answer.body["reason"]) == (200, "delivered")
    [event] = up.fme_events()
    assert (event["key"], event["eventTypeId"], event["timestamp"]) == (
        "customer-123",
        "Order_Completed",
        ORDER_TIME_MS,
    )
    assert event["properties"]["page_name"] == "Checkout"
    assert event["properties"]["session_id"] == "o-1ABC-na1:6915774531905556:5557778531805533"
    assert up.calls("GET", "/v2/users/") == []  # the uid is in the body: no lookup
    assert_fme_accepts(event)


def test_flat_stream_never_sends_email_display_name_or_ip_address(entry: str, up: FakeUpstream) -> None:
    send(entry, event_bytes("fullstory-stream-flat.json"))

    [event] = up.fme_events()
    sent = json.dumps(event)
    assert [value for value in PERSONAL if value in sent] == []
    assert not {"event_type", "event_time", "user_id"} & set(event["properties"])


def test_flat_stream_sends_a_personal_field_only_when_the_mapping_names_it(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FS2SPLIT_MAPPING", json.dumps({"properties": {"include": ["*", "user_email"]}}))

    send(entry, event_bytes("fullstory-stream-flat.json"))

    [event] = up.fme_events()
    assert event["properties"]["user_email"] == "customer@example.com"
    assert {"ip_address", "user_display_name"}.isdisjoint(event["properties"])


@pytest.mark.parametrize("user_id", [None, "", "   "])
def test_flat_stream_without_a_user_id_is_200_anonymous_user_and_nothing_is_sent(
    entry: str, up: FakeUpstream, user_id: str | None
) -> None:
    answer = send(entry, flat(user_id=user_id) if user_id is not None else flat(user_id=None))

    assert (answer.status, answer.body["reason"]) == (200, "anonymous_user")
    assert up.fme_events() == []


def test_flat_stream_without_event_time_is_sent_at_arrival_and_the_answer_says_so(entry: str, up: FakeUpstream) -> None:
    before = int(time.time() * 1000)

    answer = send(entry, flat(event_time=None))

    assert (answer.status, answer.body["reason"]) == (200, "delivered")
    assert any("arrival" in note for note in answer.body["notes"])
    [event] = up.fme_events()
    assert before <= event["timestamp"] <= int(time.time() * 1000)


@pytest.mark.parametrize("event_time", ["yesterday", True, {"at": 1}, 10**400])
def test_flat_stream_whose_event_time_is_not_a_date_is_400(entry: str, up: FakeUpstream, event_time: Any) -> None:
    answer = send(entry, flat(event_time=event_time))

    assert (answer.status, answer.body["reason"]) == (400, "not_a_webhook")
    assert "event_time" in answer.body["message"]
    assert up.fme_events() == []


# --- the documented Advanced JSON Mapping -----------------------------------------------------------------------


def test_documented_mapping_output_is_delivered_with_key_name_and_time(entry: str, up: FakeUpstream) -> None:
    answer = send(entry, documented_mapping_body())

    assert (answer.status, answer.body["reason"]) == (200, "delivered")
    [event] = up.fme_events()
    assert (event["key"], event["eventTypeId"], event["timestamp"]) == (
        "customer-123",
        "Order_Completed",
        ORDER_TIME_MS,
    )
    assert event["properties"]["stream"] == "fullstory:fs2split orders"
    sent = json.dumps(event)
    assert [value for value in PERSONAL if value in sent] == []
    assert_fme_accepts(event)


def test_documented_mapping_for_an_unidentified_user_is_anonymous_not_a_made_up_key(
    entry: str, up: FakeUpstream
) -> None:
    context = event_json("fullstory-stream-context.json")
    del context["user"]["user_id"]

    answer = send(entry, documented_mapping_body(context))

    assert (answer.status, answer.body["reason"]) == (200, "anonymous_user")
    assert up.fme_events() == []


def test_documented_mapping_example_output_is_what_the_template_gives_for_the_sample() -> None:
    shown = json.loads((EXAMPLES / "fullstory-stream-mapped.json").read_text())

    assert shown == documented_mapping_body()


def test_documented_mapping_uses_only_fullstorys_functions_and_field_paths() -> None:
    documented = {"var", "concat", "list", "asString", "asStrings", "asNumber", "asNumbers", "asBool", "asBools"}
    documented |= {"toUnixTimestamp"}
    context = event_json("fullstory-stream-context.json")
    used: list[tuple[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list) and node and isinstance(node[0], str):
            used.append((node[0], node[1] if len(node) > 1 else None))
            for argument in node[1:]:
                walk(argument)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)

    walk(json.loads((EXAMPLES / "fullstory-stream-mapping.json").read_text()))

    assert {name for name, _ in used} <= documented
    for name, path in used:
        if name == "var":
            assert evaluate(["var", path], context) is not None, f"{path} is not in FullStory's field list sample"
        if name in {"asString", "asStrings"}:
            assert "user_id" not in json.dumps(path)  # asString would turn a missing uid into a key


# --- any other shape, through the mapping's streams section ----------------------------------------------------


CUSTOM_SHAPE_MAPPING = {
    "streams": {"name": "what.action", "timestamp": "what.at", "uid": "who.id", "properties": "what.details"},
}


def custom_shape(at: Any = 1793629920, uid: Any = "customer-9") -> dict[str, Any]:
    body: dict[str, Any] = {"what": {"action": "Plan Upgraded", "details": {"plan": "pro", "seats": 5}}, "who": {}}
    if at is not None:
        body["what"]["at"] = at
    if uid is not None:
        body["who"]["id"] = uid
    return body


@pytest.fixture
def custom_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FS2SPLIT_MAPPING", json.dumps(CUSTOM_SHAPE_MAPPING))


@pytest.mark.usefixtures("custom_mapping")
def test_streams_mapping_reads_name_time_key_and_properties_from_its_paths(entry: str, up: FakeUpstream) -> None:
    answer = send(entry, custom_shape())

    assert (answer.status, answer.body["reason"]) == (200, "delivered")
    [event] = up.fme_events()
    assert (event["key"], event["eventTypeId"], event["timestamp"]) == ("customer-9", "Plan_Upgraded", 1793629920000)
    assert event["properties"] == {"plan": "pro", "seats": 5}
    assert_fme_accepts(event)


@pytest.mark.usefixtures("custom_mapping")
@pytest.mark.parametrize(
    ("at", "expected_ms"),
    [(1793629920, 1793629920000), (1793629920120, 1793629920120), ("2026-11-02T14:32:00.120Z", 1793629920120)],
)
def test_streams_mapping_reads_epoch_seconds_milliseconds_and_iso_times(
    entry: str, up: FakeUpstream, at: Any, expected_ms: int
) -> None:
    send(entry, custom_shape(at=at))

    assert [event["timestamp"] for event in up.fme_events()] == [expected_ms]


@pytest.mark.usefixtures("custom_mapping")
def test_streams_mapping_body_without_the_uid_is_anonymous_user(entry: str, up: FakeUpstream) -> None:
    answer = send(entry, custom_shape(uid=None))

    assert (answer.status, answer.body["reason"]) == (200, "anonymous_user")
    assert up.fme_events() == []


@pytest.mark.usefixtures("custom_mapping")
def test_streams_mapping_body_without_the_time_is_sent_at_arrival_with_a_note(entry: str, up: FakeUpstream) -> None:
    answer = send(entry, custom_shape(at=None))

    assert answer.body["reason"] == "delivered"
    assert answer.body["notes"]
    assert len(up.fme_events()) == 1


@pytest.mark.usefixtures("custom_mapping")
def test_streams_mapping_still_reads_v1_webhooks_as_v1(entry: str, up: FakeUpstream) -> None:
    answer = send(entry, event_bytes("fullstory-test-event.json"))

    assert (answer.status, answer.body["reason"]) == (200, "test_event")


def test_the_setup_page_shows_the_documented_mapping_as_it_is_in_examples() -> None:
    page = (EXAMPLES.parent / "docs" / "fullstory-setup.md").read_text()
    [shown] = [block for block in page.split("```json\n")[1:]]

    assert json.loads(shown.split("```")[0]) == json.loads((EXAMPLES / "fullstory-stream-mapping.json").read_text())
