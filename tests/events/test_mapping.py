"""The mapping through the FullStory webhook: ``fs2split.app.handle`` with an Instance built from an env dict.

The judge of every event that leaves fs2split is the official Python SDK's own input validator
(``tests.support.fme_judge``).
No network: dry run returns the would-be events in the response body, and live mode posts to FME
through ``responses``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from fs2split.app import handle
from fs2split.events.mapping import SUFFIXES
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from fs2split.logs import LOGGER_NAME
from tests.support.fme_judge import assert_fme_accepts

EVENTS = Path(__file__).parent
FME_BULK = "https://events.split.io/api/events/bulk"
FULLSTORY_USER = "https://api.fullstory.com/v2/users/5000000000000003"
# Dry run even if a developer keeps an SPLIT_API_KEY file beside main.py.
DRY = {"FS2SPLIT_DRY_RUN": "true"}
LIVE = {"SPLIT_API_KEY": "sdk-test-key"}
SECRETS = ("ada@example.com", "billing@example.com", "+44 20 7946 0000", "4242")


def fixture(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def v1_checkout() -> dict[str, Any]:
    return fixture("fullstory-checkout-mapping-v1.json")


def streams_checkout() -> dict[str, Any]:
    return fixture("fullstory-checkout-mapping-streams.json")


def v1_plan() -> dict[str, Any]:
    return fixture("fullstory-plan-mapping-v1.json")


def renamed(body: dict[str, Any], name: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["data"]["name"] = name
    return body


def instance_with(mapping: dict[str, Any] | None, env: dict[str, str] | None = None) -> Instance:
    settings = dict(DRY if env is None else env)
    if mapping is not None:
        settings["FS2SPLIT_MAPPING"] = json.dumps(mapping)
    return Instance.from_env(settings, mapping_dir=None)


def webhook(instance: Instance, body: dict[str, Any]) -> Response:
    request = Request("POST", "/fullstory", {"content-type": "application/json"}, body=json.dumps(body).encode())
    return handle(request, instance)


def sent(response: Response) -> dict[str, Any]:
    """The one FME event of a dry run, after checking the SDK's validator accepts it."""
    assert response.status == 200, response.body
    assert response.body["reason"] == "dry_run", response.body
    [event] = response.body["events"]
    assert_fme_accepts(event)
    return event


def unsuffixed(properties: dict[str, Any]) -> dict[str, Any]:
    def strip(name: str) -> str:
        return next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)

    return {strip(name): value for name, value in properties.items()}


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Every record the fs2split logger writes during the test (it does not propagate to caplog)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def request_line(records: list[logging.LogRecord]) -> dict[str, Any]:
    """The fields of the request's one log line, written by app.respond."""
    [line] = [r for r in records if r.getMessage().startswith("POST /fullstory")]
    return dict(line.fields)  # type: ignore[attr-defined]


CHECKOUT_RULE = {"events": {"Checkout Completed": {"event_type": "checkout_completed", "value": "order.total_real"}}}


# --- value ---------------------------------------------------------------------------------------------


def test_value_path_gives_the_event_its_value_and_event_type() -> None:
    event = sent(webhook(instance_with(CHECKOUT_RULE), v1_checkout()))

    assert event["eventTypeId"] == "checkout_completed"
    assert event["value"] == 99.5


def test_value_path_without_the_suffix_finds_the_suffixed_v1_property() -> None:
    mapping = {"events": {"Checkout Completed": {"value": "order.total"}}}

    assert sent(webhook(instance_with(mapping), v1_checkout()))["value"] == 99.5


def test_suffixed_value_path_finds_the_unsuffixed_streams_property() -> None:
    assert sent(webhook(instance_with(CHECKOUT_RULE), streams_checkout()))["value"] == 99.5


def test_rule_with_a_value_path_ignores_split_value() -> None:
    mapping = {"events": {"Checkout Completed": {"value": "order.discount"}}}

    event = sent(webhook(instance_with(mapping), v1_checkout()))

    assert event["value"] is None
    assert event["properties"]["split.value_real"] == 7  # still sent as a property, as the core does


def test_value_path_to_a_string_leaves_the_event_without_a_value() -> None:
    mapping = {"events": {"Checkout Completed": {"value": "order.id"}}}

    assert sent(webhook(instance_with(mapping), v1_checkout()))["value"] is None


def test_rule_without_a_value_path_takes_split_value() -> None:
    mapping = {"events": {"Checkout Completed": {"event_type": "checkout_completed"}}}

    assert sent(webhook(instance_with(mapping), v1_checkout()))["value"] == 7


def test_event_without_a_rule_takes_split_value() -> None:
    mapping = {"events": {"Something Else": {"value": "order.total"}}}

    assert sent(webhook(instance_with(mapping), v1_checkout()))["value"] == 7


def test_value_path_is_read_before_the_privacy_filters() -> None:
    mapping = {**CHECKOUT_RULE, "properties": {"exclude": ["order.*"]}}

    event = sent(webhook(instance_with(mapping), v1_checkout()))

    assert event["value"] == 99.5
    assert "order.total_real" not in event["properties"]


def test_split_value_is_read_before_the_privacy_filters() -> None:
    mapping = {"properties": {"exclude": ["split.*"]}}

    event = sent(webhook(instance_with(mapping), v1_checkout()))

    assert event["value"] == 7
    assert "split.value_real" not in event["properties"]


# --- key and traffic type ------------------------------------------------------------------------------

PLAN_RULE = {"events": {"Plan *": {"traffic_type": "account", "key": "account.id_str"}}}


@responses.activate
def test_key_path_sends_the_account_key_on_the_account_traffic_type() -> None:
    responses.post(FME_BULK, status=202)

    response = webhook(instance_with(PLAN_RULE, LIVE), v1_plan())

    assert response.status == 200
    assert response.body["reason"] == "delivered"
    [event] = json.loads(responses.calls[0].request.body)
    assert_fme_accepts(event)
    assert (event["trafficTypeName"], event["key"]) == ("account", "acme-7")


@responses.activate
def test_key_path_makes_no_fullstory_lookup() -> None:
    responses.post(FME_BULK, status=202)
    lookup = responses.get(FULLSTORY_USER, json={"id": "5000000000000003", "uid": "customer-123"})

    response = webhook(instance_with(PLAN_RULE, {**LIVE, "FULLSTORY_API_KEY": "fs-test-key"}), v1_plan())

    assert response.body["reason"] == "delivered"
    assert lookup.call_count == 0
    assert [call.request.url for call in responses.calls] == [FME_BULK]


@responses.activate
def test_event_without_a_key_path_still_takes_the_uid_from_fullstory() -> None:
    responses.post(FME_BULK, status=202)
    responses.get(FULLSTORY_USER, json={"id": "5000000000000003", "uid": "customer-123"})
    mapping = {"events": {"Plan *": {"traffic_type": "account"}}}

    webhook(instance_with(mapping, {**LIVE, "FULLSTORY_API_KEY": "fs-test-key"}), v1_plan())

    [event] = json.loads(responses.calls[-1].request.body)
    assert (event["trafficTypeName"], event["key"]) == ("account", "customer-123")


@responses.activate
def test_missing_key_property_drops_the_event_with_reason_key_missing() -> None:
    body = v1_plan()
    del body["data"]["properties"]["account"]["id_str"]

    response = webhook(instance_with(PLAN_RULE, LIVE), body)

    assert (response.status, response.body["reason"]) == (200, "key_missing")
    assert "account.id_str" in response.body["message"]
    assert len(responses.calls) == 0


def test_numeric_key_property_becomes_a_string_key() -> None:
    body = v1_plan()
    body["data"]["properties"]["account"] = {"id_int": 4217}
    mapping = {"events": {"Plan *": {"traffic_type": "account", "key": "account.id"}}}

    assert sent(webhook(instance_with(mapping), body))["key"] == "4217"


def test_key_path_is_read_before_the_privacy_filters() -> None:
    mapping = {**PLAN_RULE, "properties": {"exclude": ["account.*"]}}

    event = sent(webhook(instance_with(mapping), v1_plan()))

    assert event["key"] == "acme-7"
    assert not [name for name in event["properties"] if name.startswith("account.")]


def test_suffixed_key_path_ignores_a_streams_property_of_another_type() -> None:
    body = streams_checkout()
    body["name"] = "Plan Upgraded"
    body["properties"]["account"]["id"] = 42  # a number: FullStory would have named it account.id_real

    response = webhook(instance_with(PLAN_RULE), body)

    assert response.body["reason"] == "key_missing"


def test_key_path_in_a_streams_event_wins_over_the_uid() -> None:
    body = streams_checkout()
    body["name"] = "Plan Upgraded"

    event = sent(webhook(instance_with(PLAN_RULE), body))

    assert event["key"] == "acme-7"
    assert event["trafficTypeName"] == "account"


# --- privacy -------------------------------------------------------------------------------------------


def test_exclude_removes_matching_properties() -> None:
    mapping = {"properties": {"exclude": ["*email*", "card.*"]}}

    properties = sent(webhook(instance_with(mapping), v1_checkout()))["properties"]

    assert sorted(properties) == [
        "account.id_str",
        "account.seats_real",
        "coupons_strs",
        "order.currency_str",
        "order.id_str",
        "order.total_real",
        "split.value_real",
        "user.phone_str",
    ]


def test_exclude_globs_ignore_case() -> None:
    mapping = {"properties": {"exclude": ["*email*"]}}

    properties = sent(webhook(instance_with(mapping), v1_checkout()))["properties"]

    assert "user.customerEmail_str" not in properties


def test_exclude_glob_without_the_suffix_matches_the_suffixed_v1_name() -> None:
    mapping = {"properties": {"exclude": ["user.email"]}}

    properties = sent(webhook(instance_with(mapping), v1_checkout()))["properties"]

    assert "user.email_str" not in properties
    assert "user.customerEmail_str" in properties


def test_suffixed_exclude_glob_matches_the_unsuffixed_streams_name() -> None:
    mapping = {"properties": {"exclude": ["user.email_str"]}}

    properties = sent(webhook(instance_with(mapping), streams_checkout()))["properties"]

    assert "user.email" not in properties
    assert "user.phone" in properties


def test_object_whose_properties_are_all_excluded_is_not_sent_at_all() -> None:
    mapping = {"properties": {"exclude": ["card.*"]}}

    properties = sent(webhook(instance_with(mapping), v1_checkout()))["properties"]

    assert not [name for name in properties if name.startswith("card")]


def test_redact_keeps_the_name_and_replaces_the_value() -> None:
    mapping = {"properties": {"redact": ["*phone*"]}}

    response = webhook(instance_with(mapping), v1_checkout())

    assert sent(response)["properties"]["user.phone_str"] == "[redacted]"
    assert "+44 20 7946 0000" not in json.dumps(response.body)


def test_include_sends_only_matching_properties() -> None:
    mapping = {"properties": {"include": ["order.*"]}}

    properties = sent(webhook(instance_with(mapping), v1_checkout()))["properties"]

    assert sorted(properties) == ["order.currency_str", "order.id_str", "order.total_real"]


def test_exclude_wins_over_redact() -> None:
    mapping = {"properties": {"exclude": ["user.phone"], "redact": ["*phone*"]}}

    properties = sent(webhook(instance_with(mapping), v1_checkout()))["properties"]

    assert "user.phone_str" not in properties


# --- drop, order and precedence ------------------------------------------------------------------------


@responses.activate
def test_drop_answers_200_dropped_by_mapping_and_sends_nothing() -> None:
    mapping = {"drop": ["debug_*"]}

    response = webhook(instance_with(mapping, LIVE), renamed(v1_checkout(), "debug_checkout"))

    assert (response.status, response.body["reason"]) == (200, "dropped_by_mapping")
    assert len(responses.calls) == 0


def test_loop_guard_applies_before_drop() -> None:
    mapping = {"drop": ["split_*"]}

    response = webhook(instance_with(mapping), renamed(v1_checkout(), "split_evaluation"))

    assert response.body["reason"] == "loop_guard"


def test_drop_applies_before_the_event_rule() -> None:
    mapping = {"drop": ["Plan *"], "events": {"Plan Upgraded": {"event_type": "plan_upgraded"}}}

    response = webhook(instance_with(mapping), v1_plan())

    assert response.body["reason"] == "dropped_by_mapping"


def test_exact_rule_wins_over_an_earlier_glob() -> None:
    mapping = {"events": {"Plan *": {"event_type": "plan_any"}, "Plan Upgraded": {"event_type": "plan_upgraded"}}}

    assert sent(webhook(instance_with(mapping), v1_plan()))["eventTypeId"] == "plan_upgraded"


def test_first_matching_glob_in_file_order_wins() -> None:
    mapping = {"events": {"Plan *": {"event_type": "plan_any"}, "Plan Up*": {"event_type": "plan_up"}}}

    assert sent(webhook(instance_with(mapping), v1_plan()))["eventTypeId"] == "plan_any"


def test_rule_event_type_wins_over_the_event_type_map() -> None:
    env = {**DRY, "FS2SPLIT_EVENT_TYPE_MAP": json.dumps({"Checkout Completed": "from_the_map"})}

    event = sent(webhook(instance_with(CHECKOUT_RULE, env), v1_checkout()))

    assert event["eventTypeId"] == "checkout_completed"


def test_event_without_a_rule_keeps_the_cores_event_type() -> None:
    mapping = {"events": {"Plan *": {"event_type": "plan_any"}}}

    assert sent(webhook(instance_with(mapping), v1_checkout()))["eventTypeId"] == "Checkout_Completed"


# --- v1 and Streams ------------------------------------------------------------------------------------


def test_streams_and_v1_events_map_to_the_same_fme_event() -> None:
    mapping = {
        "events": {
            "Checkout *": {
                "event_type": "checkout",
                "traffic_type": "account",
                "key": "account.id_str",
                "value": "order.total",
            }
        },
        "properties": {"exclude": ["*email*", "card.*"], "redact": ["user.phone_str"]},
    }
    instance = instance_with(mapping)

    from_v1 = sent(webhook(instance, v1_checkout()))
    from_streams = sent(webhook(instance, streams_checkout()))

    assert {**from_v1, "properties": unsuffixed(from_v1["properties"])} == {
        **from_streams,
        "properties": unsuffixed(from_streams["properties"]),
    }
    assert from_v1["properties"]["user.phone_str"] == from_streams["properties"]["user.phone"] == "[redacted]"


# --- without a mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fullstory-checkout-mapping-v1.json", "fullstory-checkout-mapping-streams.json"])
def test_an_empty_mapping_sends_what_no_mapping_sends(name: str) -> None:
    without = sent(webhook(instance_with(None), fixture(name)))
    empty = sent(webhook(instance_with({}), fixture(name)))

    assert empty == without


# --- logs ----------------------------------------------------------------------------------------------


def test_log_line_names_the_rule_and_counts_filtered_properties(log_records: list[logging.LogRecord]) -> None:
    mapping = {**CHECKOUT_RULE, "properties": {"exclude": ["*email*", "card.*"], "redact": ["*phone*"]}}
    instance = instance_with(mapping)

    webhook(instance, v1_checkout())

    fields = request_line(log_records)
    assert fields["rule"] == "Checkout Completed"
    assert (fields["properties_excluded"], fields["properties_redacted"]) == (4, 1)


def test_logs_never_carry_excluded_or_redacted_values(log_records: list[logging.LogRecord]) -> None:
    mapping = {"properties": {"exclude": ["*email*", "card.*"], "redact": ["*phone*"]}}
    instance = instance_with(mapping)

    webhook(instance, v1_checkout())

    written = json.dumps([[r.getMessage(), getattr(r, "fields", {})] for r in log_records], default=str)
    assert not [secret for secret in SECRETS if secret in written]


def test_key_missing_log_line_names_the_rule_and_the_path(log_records: list[logging.LogRecord]) -> None:
    body = v1_plan()
    del body["data"]["properties"]["account"]

    webhook(instance_with(PLAN_RULE), body)

    fields = request_line(log_records)
    assert (fields["rule"], fields["key_path"]) == ("Plan *", "account.id_str")


def test_log_line_without_a_mapping_has_no_mapping_fields(log_records: list[logging.LogRecord]) -> None:
    webhook(instance_with(None), v1_checkout())

    fields = request_line(log_records)
    assert not {"rule", "properties_excluded", "properties_redacted"} & set(fields)


# --- an invalid mapping --------------------------------------------------------------------------------

INVALID = {"events": {"Plan *": {"traffic_type": "Account"}}}


def test_invalid_mapping_makes_every_fullstory_webhook_answer_503() -> None:
    instance = instance_with(INVALID)

    responses_ = [webhook(instance, body) for body in (v1_checkout(), streams_checkout(), v1_plan())]

    assert {(r.status, r.body["reason"]) for r in responses_} == {(503, "mapping_invalid")}
    assert responses_[0].body["message"] == instance.mapping_error


def test_invalid_mapping_leaves_the_impressions_route_alone() -> None:
    request = Request("POST", "/split/impressions", {"content-type": "application/json"}, body=b"[]")

    response = handle(request, instance_with(INVALID))

    assert response.body["reason"] != "mapping_invalid"


def test_healthz_answers_503_with_the_mapping_error_line() -> None:
    instance = instance_with(INVALID)

    response = handle(Request("GET", "/healthz"), instance)

    assert (response.status, response.body["reason"]) == (503, "mapping_invalid")
    assert response.body["message"] == instance.mapping_error
    assert 'events."Plan *".traffic_type' in response.body["message"]


def test_healthz_summarises_the_loaded_mapping() -> None:
    rules = {**CHECKOUT_RULE["events"], **PLAN_RULE["events"]}
    mapping = {"events": rules, "drop": ["debug_*"], "properties": {"redact": ["*phone*"]}}

    response = handle(Request("GET", "/healthz"), instance_with(mapping))

    assert response.status == 200
    assert response.body["integrations"]["fullstory_to_fme"]["mapping"] == {
        "source": "FS2SPLIT_MAPPING",
        "rules": 2,
        "drop": 1,
        "include": 1,
        "exclude": 0,
        "redact": 1,
    }


def test_healthz_shows_no_mapping_as_null() -> None:
    response = handle(Request("GET", "/healthz"), instance_with(None))

    assert response.body["integrations"]["fullstory_to_fme"]["mapping"] is None


def test_invalid_mapping_is_logged_as_one_error_line_when_the_instance_is_built(
    log_records: list[logging.LogRecord],
) -> None:
    instance = instance_with(INVALID)

    errors = [r for r in log_records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [instance.mapping_error]
    assert "\n" not in errors[0].getMessage()
