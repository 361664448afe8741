"""The impression → FullStory event builder shared by the SDK listener and the webhook route (pure, no I/O)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from splitio.models.impressions import Impression as SdkImpression

from fs2split.clients.upstream import encode_json
from fs2split.impressions import event as impressions
from fs2split.impressions.event import Impression, Problem
from tests.conftest import event_json


def webhook_item(**changes: Any) -> dict[str, Any]:
    return {**event_json("split-impressions-webhook.json")[0], **changes}


def hook(**changes: Any) -> Impression:
    """The fixture's impression, changed; it must be deliverable."""
    built = impressions.from_webhook(webhook_item(**changes))
    assert isinstance(built, Impression), built
    return built


def sdk_impression(**changes: Any) -> SdkImpression:
    fields = {
        "matching_key": "customer-123",
        "feature_name": "new_checkout",
        "treatment": "on",
        "label": "default rule",
        "change_number": 1667920819383,
        "bucketing_key": None,
        "time": 1668106790992,
        "previous_time": None,
        "properties": None,
    }
    return SdkImpression(**{**fields, **changes})


def from_sdk(environment_name: str | None = None, **changes: Any) -> Impression:
    """The same evaluation as the fixture, as the Python SDK hands it to a listener; it must be deliverable."""
    built = impressions.from_sdk(sdk_impression(**changes), "python-10.7.0", environment_name)
    assert isinstance(built, Impression), built
    return built


def test_given_the_fme_webhook_fixture_when_built_then_the_event_has_the_browser_recipes_shape() -> None:
    event = impressions.to_event(hook())

    assert event == {
        "name": "split_evaluation",
        "timestamp": "2022-11-10T18:59:50.992Z",
        "user": {"uid": "customer-123"},
        "session": {"use_most_recent": True},
        "properties": {
            "impression": {
                "feature": "new_checkout",
                "treatment": "on",
                "keyName": "customer-123",
                "label": "default rule",
                "changeNumber": 1667920819383,
                "time": 1668106790992,
            },
            "environmentName": "Production",
            "sdkLanguageVersion": "python-10.7.0",
        },
    }


def test_given_the_same_evaluation_from_the_sdk_listener_when_built_then_the_event_matches_the_webhooks() -> None:
    listened, posted = from_sdk("Production"), hook()

    assert listened == posted
    assert impressions.to_event(listened) == impressions.to_event(posted)


def key_of(impression: Impression) -> str:
    """The Idempotency-Key of the request that sends this impression alone, as the FullStory client sends it."""
    return impressions.idempotency_key(encode_json(impressions.to_event(impression)))


def test_given_an_impression_seen_by_both_paths_with_the_environment_named_then_both_carry_the_same_key() -> None:
    # Listener (SPLIT_ENVIRONMENT_NAME set) and webhook both on: FullStory answers the second with the first's
    # cached result, because the two request bodies are byte-identical.
    listened = key_of(from_sdk("Production"))

    assert listened == key_of(hook())
    assert listened.startswith("fs2split-imp-")


def test_given_the_listener_does_not_know_the_environment_then_its_body_and_key_differ_from_the_webhooks() -> None:
    # Different bodies never share a key: FullStory errors when one key arrives with two bodies.
    assert key_of(from_sdk()) != key_of(hook())


def test_given_identical_bodies_then_one_key_and_any_changed_byte_gives_another() -> None:
    body = encode_json(impressions.to_event(hook()))

    assert impressions.idempotency_key(body) == impressions.idempotency_key(bytes(body))
    assert impressions.idempotency_key(body) != impressions.idempotency_key(body.replace(b'"on"', b'"On"'))


def test_given_a_later_evaluation_of_the_same_treatment_then_it_is_a_duplicate_but_not_a_repeat() -> None:
    first, later = hook(), hook(time=1668106790992 + 60_000)

    assert impressions.dedup_key(first) == impressions.dedup_key(later)
    assert key_of(first) != key_of(later)


def test_given_another_treatment_or_flag_version_then_it_is_not_a_duplicate() -> None:
    base = impressions.dedup_key(hook())

    assert impressions.dedup_key(hook(treatment="off")) != base
    assert impressions.dedup_key(hook(splitVersionNumber=2)) != base


def test_given_keys_that_only_differ_in_where_parts_split_then_their_dedup_keys_differ() -> None:
    a = Impression(key="a|b", feature="c", treatment="on")
    b = Impression(key="a", feature="b|c", treatment="on")

    assert impressions.dedup_key(a) != impressions.dedup_key(b)


def test_given_a_bucketing_key_then_it_is_sent_and_given_none_then_it_is_left_out() -> None:
    with_bucket = impressions.to_event(hook(bucketingKey="account-7"))
    without = impressions.to_event(hook(bucketingKey=None))

    assert with_bucket["properties"]["impression"]["bucketingKey"] == "account-7"
    assert "bucketingKey" not in without["properties"]["impression"]


def test_given_webhook_fields_fullstory_does_not_need_then_none_of_them_is_sent() -> None:
    impression = hook(properties='{"email":"a@example.com"}', machineIp="10.1.2.3", machineName="host-9")

    sent = json.dumps(impressions.to_event(impression))

    for value in ("a@example.com", "10.1.2.3", "host-9", "194da2f0"):
        assert value not in sent


def test_given_evaluation_attributes_then_they_are_sent_only_when_passed_and_made_json_safe() -> None:
    impression = from_sdk()
    attributes = {"plan": "pro", "age": 41, "vip": True, "score": math.nan, "tags": ["a", 2, object()], 7: "x"}

    plain = impressions.to_event(impression)
    opted_in = impressions.to_event(impression, attributes=attributes)

    assert "attributes" not in plain["properties"]
    assert opted_in["properties"]["attributes"] == {"plan": "pro", "age": 41, "vip": True, "tags": ["a", 2]}


def test_given_an_item_without_key_flag_or_treatment_then_it_is_named_undeliverable() -> None:
    assert impressions.from_webhook(webhook_item(key="")) is Problem.NO_KEY
    assert impressions.from_webhook(webhook_item(key=None)) is Problem.NO_KEY
    assert impressions.from_webhook(webhook_item(split="   ")) is Problem.NO_FLAG
    assert impressions.from_webhook(webhook_item(treatment=None)) is Problem.NO_TREATMENT
    assert impressions.from_webhook(["customer-1"]) is Problem.NOT_AN_OBJECT
    assert impressions.from_webhook(webhook_item(key="k" * 251)) is Problem.FIELD_TOO_LONG
    assert impressions.from_webhook(webhook_item(key="customer-\ud800")) is Problem.NOT_UNICODE
    assert impressions.from_sdk(None) is Problem.NOT_AN_OBJECT


def test_given_a_numeric_key_then_it_is_sent_as_the_string_the_sdks_evaluate() -> None:
    assert impressions.to_event(hook(key=12345))["user"] == {"uid": "12345"}


def test_given_an_unusable_time_then_the_event_has_no_timestamp_and_fullstory_uses_its_arrival() -> None:
    for bad in (math.nan, math.inf, "1668106790992", True, 1.5, 10**30):
        event = impressions.to_event(hook(time=bad))
        assert "timestamp" not in event
        assert "time" not in event["properties"]["impression"]


def test_given_epoch_milliseconds_then_the_timestamp_is_exact_iso_8601_utc() -> None:
    assert impressions.iso_timestamp(1668106790992) == "2022-11-10T18:59:50.992Z"
    assert impressions.iso_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert impressions.iso_timestamp(1668106790000) == "2022-11-10T18:59:50.000Z"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_item = st.fixed_dictionaries(
    {},
    optional={
        name: _json | st.text(max_size=30)
        for name in ("key", "split", "treatment", "time", "label", "bucketingKey", "splitVersionNumber", "sdk")
    },
)


@given(item=_item | _json)
def test_given_any_json_item_then_the_builder_never_raises_and_the_event_is_strict_json(item: Any) -> None:
    impression = impressions.from_webhook(item)
    if isinstance(impression, Problem):
        return
    event = impressions.to_event(impression)
    json.dumps(event, allow_nan=False)  # FullStory's JSON has no NaN
    assert event["user"]["uid"] == impression.key
    assert key_of(impression).isascii()
