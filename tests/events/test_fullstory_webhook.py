"""FullStory webhook → FME event, through the portable handler, with `responses` standing in
for FullStory's and FME's APIs. Every event fs2split sends is judged by the real SDK validator."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from responses import matchers

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from tests.conftest import event_bytes, event_json
from tests.support.fme_judge import assert_fme_accepts

FS_USERS = "https://api.fullstory.com/v2/users/"
FME_BULK = "https://events.split.io/api/events/bulk"
LIVE = {"SPLIT_API_KEY": "sdk-key-123", "FULLSTORY_API_KEY": "fs-key-456"}


def post(instance: Instance, body: bytes | dict[str, Any], path: str = "/fullstory", **headers: str) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return handle(Request("POST", path, {k.lower(): v for k, v in headers.items()}, {}, raw), instance)


def custom_event(name: str = "Product Added", properties: dict[str, Any] | None = None, user: str = "111") -> bytes:
    document = event_json("fullstory-custom-event.json")
    document["data"]["name"] = name
    if properties is not None:
        document["data"]["properties"] = properties
    document["data"]["sessionUrl"] = f"https://app.fullstory.com/ui/TN1/session/{user}:222"
    return json.dumps(document).encode()


def sent_events(calls: responses.CallList) -> list[dict[str, Any]]:
    return [event for call in calls if call.request.url == FME_BULK for event in json.loads(call.request.body)]


@pytest.fixture
def live(make_instance: Any) -> Instance:
    return make_instance(**LIVE)


@pytest.fixture
def api() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_custom_event_is_delivered_once_keyed_by_the_resolved_uid(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "6915774531905556", json={"id": "6915774531905556", "uid": "customer-42"})
    api.post(FME_BULK, status=202)

    response = post(live, event_bytes("fullstory-custom-event.json"))

    assert response.status == 200
    assert response.body["reason"] == "delivered"
    [event] = sent_events(api.calls)
    assert event == {
        "eventTypeId": "Product_Added",
        "trafficTypeName": "user",
        "key": "customer-42",
        "timestamp": 1578602990433,
        "value": None,
        "properties": {
            "cart_id_str": "13093678493",
            "price_real": 58.99,
            "quantity_real": 1,
            "position_int": 3,
            "url_str": "https://www.example.com/product/path",
        },
    }
    assert_fme_accepts(event)


def test_delivery_makes_exactly_one_fme_call_and_authenticates_both_apis(live: Instance, api: Any) -> None:
    api.get(
        FS_USERS + "6915774531905556",
        json={"id": "1", "uid": "customer-42"},
        match=[matchers.header_matcher({"Authorization": "Basic fs-key-456"})],
    )
    api.post(FME_BULK, status=202, match=[matchers.header_matcher({"Authorization": "Bearer sdk-key-123"})])

    post(live, event_bytes("fullstory-custom-event.json"))

    assert [call.request.method for call in api.calls] == ["GET", "POST"]


def test_later_events_of_a_known_user_cost_no_lookup(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "111", json={"id": "1", "uid": "customer-1"})
    api.post(FME_BULK, status=202)

    for name in ("Viewed", "Added", "Bought"):
        assert post(live, custom_event(name)).status == 200

    lookups = [c for c in api.calls if c.request.method == "GET"]
    assert len(lookups) == 1
    assert [e["key"] for e in sent_events(api.calls)] == ["customer-1"] * 3


def test_nested_properties_are_named_as_the_original_integration_named_them(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "5000000000000001", json={"id": "1", "uid": "customer-7"})
    api.post(FME_BULK, status=202)

    post(live, event_bytes("fullstory-nested-event.json"))

    [event] = sent_events(api.calls)
    assert event["properties"] == {
        "split.value_real": 42,
        "foo_bool": False,
        "bar.changeNumber_real": 1667920819383,
        "bar.feature_str": "multivariant_demo",
        "colors.rainbow_strs": '["red","orange","yellow"]',
        "colors.prison_strs": '["gray"]',
        "colors.invisible.noface.character_str": "miyazake",
    }
    assert event["value"] == 42
    assert_fme_accepts(event)


@pytest.mark.parametrize(
    ("properties", "value"),
    [
        ({"split": {"value": 3}}, 3),
        ({"split": {"value_real": 2.5}}, 2.5),
        ({"split": {"value_int": 7}}, 7),
        ({"split": {"value_str": "9"}}, None),
        ({"split": {"value_bool": True}}, None),
        ({"split": {"value": "12"}}, None),
        ({"price_real": 10}, None),
    ],
)
def test_value_comes_only_from_a_finite_split_value_number(
    live: Instance, api: Any, properties: dict[str, Any], value: Any
) -> None:
    api.get(FS_USERS + "111", json={"id": "1", "uid": "customer-1"})
    api.post(FME_BULK, status=202)

    post(live, custom_event(properties=properties))

    [event] = sent_events(api.calls)
    assert event["value"] == value
    assert_fme_accepts(event)


def test_streams_event_uses_its_uid_without_any_lookup(live: Instance, api: Any) -> None:
    api.post(FME_BULK, status=202)

    response = post(live, event_bytes("fullstory-streams-event.json"))

    assert response.status == 200
    [call] = api.calls
    [event] = json.loads(call.request.body)
    assert event["key"] == "customer-123"
    assert event["eventTypeId"] == "Checkout_Completed"
    assert event["timestamp"] == 1704164645000
    assert event["properties"] == {"order.total": 120.5}
    assert "customer@example.com" not in call.request.body.decode()
    assert_fme_accepts(event)


def test_test_button_event_is_answered_200_with_no_call(live: Instance, api: Any) -> None:
    response = post(live, event_bytes("fullstory-test-event.json"))

    assert (response.status, response.body["reason"]) == (200, "test_event")
    assert len(api.calls) == 0


def test_other_webhook_types_are_ignored_with_200(live: Instance, api: Any) -> None:
    response = post(live, {"eventName": "note.created", "version": 1, "data": {"text": "hi"}})

    assert (response.status, response.body["reason"]) == (200, "ignored")
    assert len(api.calls) == 0


@pytest.mark.parametrize("name", ["split_evaluation", "Split_Evaluation"])
def test_split_evaluation_events_are_never_sent_back_to_fme(live: Instance, api: Any, name: str) -> None:
    response = post(live, custom_event(name))

    assert (response.status, response.body["reason"]) == (200, "loop_guard")
    assert len(api.calls) == 0


def test_loop_guard_list_is_configurable_and_keeps_split_evaluation(make_instance: Any, api: Any) -> None:
    instance = make_instance(**LIVE, FS2SPLIT_LOOP_GUARD_EVENTS="flag_seen, other_echo")

    reasons = [post(instance, custom_event(n)).body["reason"] for n in ("flag_seen", "split_evaluation")]

    assert reasons == ["loop_guard", "loop_guard"]
    assert len(api.calls) == 0


def test_anonymous_user_is_not_sent_and_no_key_is_invented(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "111", json={"id": "111", "display_name": ""})

    response = post(live, custom_event())

    assert (response.status, response.body["reason"]) == (200, "anonymous_user")
    assert sent_events(api.calls) == []


def test_unknown_user_is_not_sent(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "111", status=404, json={"code": "resource_not_found"})

    response = post(live, custom_event())

    assert (response.status, response.body["reason"]) == (200, "user_not_found")
    assert sent_events(api.calls) == []


def test_fallback_setting_keys_unresolved_users_by_their_fullstory_id(make_instance: Any, api: Any) -> None:
    instance = make_instance(**LIVE, FS2SPLIT_KEY_FALLBACK="fullstory_user_id")
    api.get(FS_USERS + "111", status=404, json={"code": "resource_not_found"})
    api.post(FME_BULK, status=202)

    response = post(instance, custom_event())

    assert response.body["reason"] == "delivered"
    assert [e["key"] for e in sent_events(api.calls)] == ["111"]


@pytest.mark.parametrize(
    "session_url",
    [
        "https://app.fullstory.com/ui/TN1/session/123%3A456",
        "https://app.fullstory.com/ui/TN1/session/123%3a456!789",
        "https://app.eu1.fullstory.com/ui/o-1AB-eu1/session/123:456",
        "https://app.fullstory.com/ui/TN1/session/123:456!1110765439578976",
    ],
)
def test_user_id_is_read_from_every_known_session_url_form(live: Instance, api: Any, session_url: str) -> None:
    api.get(FS_USERS + "123", json={"id": "1", "uid": "customer-123"})
    api.post(FME_BULK, status=202)
    document = event_json("fullstory-custom-event.json")
    document["data"]["sessionUrl"] = session_url

    response = post(live, document)

    assert response.body["reason"] == "delivered"
    assert [e["key"] for e in sent_events(api.calls)] == ["customer-123"]


@pytest.mark.parametrize(
    "session_url",
    [None, "", "https://app.fullstory.com/ui/TN1/client-session/2b1e5c1c-7c5e-4d7a-9f59-1f1c1a1b1c1d"],
)
def test_event_without_a_user_id_is_not_sent(live: Instance, api: Any, session_url: str | None) -> None:
    document = event_json("fullstory-custom-event.json")
    document["data"]["sessionUrl"] = session_url

    response = post(live, document)

    assert (response.status, response.body["reason"]) == (200, "no_user_id")
    assert len(api.calls) == 0


def test_rename_map_overrides_the_event_type_rule(make_instance: Any, api: Any) -> None:
    instance = make_instance(**LIVE, FS2SPLIT_EVENT_TYPE_MAP='{"Product Added": "cart.add"}')
    api.get(FS_USERS + "111", json={"id": "1", "uid": "u"})
    api.post(FME_BULK, status=202)

    post(instance, custom_event("Product Added"))

    assert [e["eventTypeId"] for e in sent_events(api.calls)] == ["cart.add"]


def test_traffic_type_setting_is_sent_lower_case(make_instance: Any, api: Any) -> None:
    instance = make_instance(**LIVE, SPLIT_TRAFFIC_TYPE="Account")
    api.get(FS_USERS + "111", json={"id": "1", "uid": "u"})
    api.post(FME_BULK, status=202)

    post(instance, custom_event())

    [event] = sent_events(api.calls)
    assert event["trafficTypeName"] == "account"
    assert_fme_accepts(event)


def test_fme_refusing_the_event_is_reported_as_422_with_fmes_message(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "111", json={"id": "1", "uid": "u"})
    api.post(FME_BULK, status=400, json={"message": "event type not allowed"})

    response = post(live, custom_event())

    assert (response.status, response.body["reason"]) == (422, "fme_rejected")
    assert "event type not allowed" in response.body["message"]
    assert len([c for c in api.calls if c.request.url == FME_BULK]) == 1  # a 4xx is not retried


def test_fme_refusing_the_sdk_key_is_a_502_not_a_200(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "111", json={"id": "1", "uid": "u"})
    api.post(FME_BULK, status=401, json={"message": "invalid api key"})

    response = post(live, custom_event())

    assert (response.status, response.body["reason"]) == (502, "fme_unauthorized")
    assert "sdk-key-123" not in json.dumps(response.body)


def test_fullstory_refusing_the_lookup_key_is_a_502(live: Instance, api: Any) -> None:
    api.get(FS_USERS + "111", status=401, json={"code": "unauthenticated", "message": "bad key"})

    response = post(live, custom_event())

    assert (response.status, response.body["reason"]) == (502, "fullstory_rejected")
    assert sent_events(api.calls) == []


def test_live_mode_without_a_fullstory_key_refuses_rather_than_guess(make_instance: Any, api: Any) -> None:
    instance = make_instance(SPLIT_API_KEY="sdk-key-123")

    response = post(instance, custom_event())

    assert (response.status, response.body["reason"]) == (503, "fullstory_key_missing")
    assert len(api.calls) == 0


def test_dry_run_without_keys_shows_the_event_keyed_by_fullstory_id_and_says_so(
    make_instance: Any, api: Any
) -> None:
    instance = make_instance()

    response = post(instance, event_bytes("fullstory-custom-event.json"))

    assert (response.status, response.body["reason"]) == (200, "dry_run")
    assert response.body["key_source"] == "fullstory_user_id"
    assert "not the uid" in response.body["message"]
    [event] = response.body["events"]
    assert event["key"] == "6915774531905556"
    assert_fme_accepts(event)
    assert len(api.calls) == 0


def test_dry_run_with_a_fullstory_key_resolves_the_real_uid_but_sends_nothing(make_instance: Any, api: Any) -> None:
    instance = make_instance(FULLSTORY_API_KEY="fs-key-456")
    api.get(FS_USERS + "6915774531905556", json={"id": "1", "uid": "customer-42"})

    response = post(instance, event_bytes("fullstory-custom-event.json"))

    assert response.body["reason"] == "dry_run"
    assert [e["key"] for e in response.body["events"]] == ["customer-42"]
    assert [c.request.method for c in api.calls] == ["GET"]


def test_forced_dry_run_sends_nothing_even_with_keys(make_instance: Any, api: Any) -> None:
    instance = make_instance(**LIVE, FS2SPLIT_DRY_RUN="true")
    api.get(FS_USERS + "6915774531905556", json={"id": "1", "uid": "customer-42"})

    response = post(instance, event_bytes("fullstory-custom-event.json"))

    assert response.body["reason"] == "dry_run"
    assert sent_events(api.calls) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b'{"eventName": "recording.event.custom", "data": {"name": "x", "properties": {"a": NaN}}}', "invalid_json"),
        (b"[1, 2]", "not_a_webhook"),
        (b'{"hello": "world"}', "not_a_webhook"),
        (b'{"eventName": 5}', "not_a_webhook"),
        (b'{"eventName": "recording.event.custom"}', "not_a_webhook"),
        (b'{"eventName": "recording.event.custom", "data": {"name": ""}}', "not_a_webhook"),
        (b'{"eventName": "recording.event.custom", "data": {"name": "x", "properties": [1]}}', "not_a_webhook"),
        (b'{"eventName": "recording.event.custom", "data": {"name": "x", "timestamp": "yesterday"}}', "not_a_webhook"),
    ],
)
def test_malformed_bodies_get_a_400_with_a_one_line_reason(live: Instance, api: Any, body: bytes, reason: str) -> None:
    response = post(live, body)

    assert (response.status, response.body["reason"]) == (400, reason)
    assert "\n" not in response.body["message"]
    assert len(api.calls) == 0


def test_unknown_route_is_404_and_wrong_method_is_405(live: Instance) -> None:
    missing = handle(Request("POST", "/nope", {}, {}, b"{}"), live)
    wrong = handle(Request("GET", "/fullstory", {}, {}, b""), live)

    assert (missing.status, missing.body["reason"]) == (404, "not_found")
    assert (wrong.status, wrong.body["reason"], wrong.headers["Allow"]) == (405, "method_not_allowed", "POST")


def test_health_names_the_version_and_integrations_but_no_secret(make_instance: Any) -> None:
    instance = make_instance(**LIVE, FULLSTORY_WEBHOOK_SECRET="whsec-789", SPLIT_IMPRESSIONS_TOKEN="tok-000")

    response = handle(Request("GET", "/healthz", {}, {}, b""), instance)

    assert response.status == 200
    assert response.body["version"]
    assert response.body["integrations"]["fullstory_to_fme"]["mode"] == "live"
    assert response.body["integrations"]["fullstory_to_fme"]["signature_required"] is True
    text = json.dumps(response.body)
    for secret in ("sdk-key-123", "fs-key-456", "whsec-789", "tok-000"):
        assert secret not in text


def test_invalid_setting_makes_webhooks_answer_503_with_the_setting_named(make_instance: Any, api: Any) -> None:
    instance = make_instance(**LIVE, FS2SPLIT_UID_CACHE_TTL_SECONDS="an hour")

    response = post(instance, custom_event())
    health = handle(Request("GET", "/healthz", {}, {}, b""), instance)

    assert (response.status, response.body["reason"]) == (503, "settings_invalid")
    assert "FS2SPLIT_UID_CACHE_TTL_SECONDS" in response.body["message"]
    assert health.status == 503
    assert len(api.calls) == 0


def test_rename_to_an_event_type_fme_refuses_makes_webhooks_answer_503(make_instance: Any, api: Any) -> None:
    instance = make_instance(**LIVE, FS2SPLIT_EVENT_TYPE_MAP='{"Product Added": "product added"}')

    response = post(instance, custom_event())

    assert (response.status, response.body["reason"]) == (503, "settings_invalid")
    assert "FS2SPLIT_EVENT_TYPE_MAP" in response.body["message"]
    assert len(api.calls) == 0
