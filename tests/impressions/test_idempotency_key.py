"""The impressions ``Idempotency-Key`` is a function of the exact request body (FullStory errors when one key
arrives with two bodies): identical bodies share a key, different bodies never do. With the listener's
``SPLIT_ENVIRONMENT_NAME`` set, the listener and the webhook send identical bodies for one evaluation, so
FullStory keeps one ``split_evaluation`` event; without it, the bodies differ and FullStory keeps two.
Checked against the loopback FullStory, which refuses a key reused with another body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from splitio.models.impressions import Impression as SdkImpression

from fs2split.app import handle
from fs2split.http_types import Request
from fs2split.impressions import event as impressions
from fs2split.impressions.listener import FullStoryImpressionListener
from fs2split.instance import Instance
from tests.conftest import event_bytes, event_json
from tests.support.upstream import FakeUpstream

FS_KEY = "fs-key-0123456789"
PATH = "/split/impressions"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def bridge(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url)


def listen_to_the_fixtures_evaluation(up: FakeUpstream, env: dict[str, str]) -> None:
    """The real SDK's listener data for the evaluation in ``split-impressions-webhook.json``, sent and flushed."""
    item = event_json("split-impressions-webhook.json")[0]
    listener = FullStoryImpressionListener(FS_KEY, up.fullstory_url, env=env)
    try:
        impression = SdkImpression(
            item["key"], item["split"], item["treatment"], item["label"], item["splitVersionNumber"],
            item["bucketingKey"], item["time"], None, None,
        )  # fmt: skip
        listener.log_impression({"impression": impression, "attributes": None, "sdk-language-version": "python-10.7.0"})
        assert listener.flush(5)
    finally:
        listener.close(timeout_s=1)


def webhook(instance: Instance, body: bytes) -> dict[str, Any]:
    response = handle(Request("POST", PATH, {}, {}, body), instance)
    return {"status": response.status, **response.body}


def test_given_the_environment_name_setting_then_the_listener_and_the_webhook_leave_one_event_in_fullstory(
    up: FakeUpstream, bridge: Instance
) -> None:
    listen_to_the_fixtures_evaluation(up, {"SPLIT_ENVIRONMENT_NAME": "Production"})

    answer = webhook(bridge, event_bytes("split-impressions-webhook.json"))

    assert (answer["status"], answer["delivered"]) == (200, 1)
    listened, hooked = up.calls("POST", "/v2/events")
    assert listened.body == hooked.body
    assert listened.headers["idempotency-key"] == hooked.headers["idempotency-key"]
    assert len(up.fullstory_events()) == 1  # FullStory answered the second from its cache


def test_given_no_environment_name_then_the_bodies_differ_and_fullstory_holds_two_events(
    up: FakeUpstream, bridge: Instance
) -> None:
    # The documented cost of an unnamed listener environment: two split_evaluation events, never an error.
    listen_to_the_fixtures_evaluation(up, {})

    answer = webhook(bridge, event_bytes("split-impressions-webhook.json"))

    assert (answer["status"], answer["delivered"]) == (200, 1)
    listened, hooked = up.calls("POST", "/v2/events")
    assert listened.headers["idempotency-key"] != hooked.headers["idempotency-key"]
    assert [e["properties"].get("environmentName") for e in up.fullstory_events()] == [None, "Production"]


@pytest.mark.parametrize("count", [1, 150], ids=["single-create", "batch-job"])
def test_given_any_write_then_its_key_is_the_digest_of_the_exact_bytes_sent(
    up: FakeUpstream, bridge: Instance, count: int
) -> None:
    base = event_json("split-impressions-webhook.json")[0]
    webhook(bridge, json.dumps([{**base, "key": f"k-{n}"} for n in range(count)]).encode())

    [call] = up.calls("POST", "/v2/events")
    assert call.headers["idempotency-key"] == impressions.idempotency_key(call.body)
