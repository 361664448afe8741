"""Queue mode's settings, health and refusals, in process: what an operator sees before any message moves."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request
from fs2split.instance import Instance
from tests.conftest import event_bytes
from tests.support.upstream import FakeUpstream, Fault

TOPIC = "projects/p/topics/t"


def get(instance: Instance, path: str) -> dict[str, Any]:
    response = handle(Request(method="GET", path=path, headers={}, query={}, body=b""), instance)
    return {"status": response.status, **response.body}


def post(instance: Instance, path: str, body: bytes) -> dict[str, Any]:
    response = handle(Request(method="POST", path=path, headers={}, query={}, body=body), instance)
    return {"status": response.status, **response.body}


def test_healthz_says_which_delivery_mode_is_configured(make_instance: Callable[..., Instance]) -> None:
    assert get(make_instance(), "/healthz")["delivery"] == "direct"
    assert get(make_instance(FS2SPLIT_DELIVERY="queue", FS2SPLIT_PUBSUB_TOPIC=TOPIC), "/healthz")["delivery"] == "queue"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FS2SPLIT_DELIVERY": "later"}, "FS2SPLIT_DELIVERY"),
        ({"FS2SPLIT_DELIVERY": "queue"}, "FS2SPLIT_QUEUE_URL"),
        ({"FS2SPLIT_DELIVERY": "queue", "FS2SPLIT_PUBSUB_TOPIC": "my-topic"}, "FS2SPLIT_PUBSUB_TOPIC"),
        ({"FS2SPLIT_DRAIN_BACKOFF_SECONDS": "3600"}, "FS2SPLIT_DRAIN_BACKOFF_SECONDS"),
    ],
)
def test_an_unusable_queue_setting_is_a_503_naming_it(
    make_instance: Callable[..., Instance], env: dict[str, str], named: str
) -> None:
    answer = post(make_instance(**env), "/fullstory", event_bytes("fullstory-custom-event.json"))

    assert (answer["status"], answer["reason"]) == (503, "settings_invalid")
    assert named in answer["message"]


def test_a_pubsub_answer_without_message_ids_is_not_an_acceptance(
    make_instance: Callable[..., Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeUpstream() as up:
        # A server that is not Pub/Sub: every publish gets a 404 (or a 200 that names no message).
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{up.port}")
        instance = make_instance(
            FS2SPLIT_DELIVERY="queue",
            FS2SPLIT_PUBSUB_TOPIC=TOPIC,
            SPLIT_API_KEY="sdk-key",
            FS2SPLIT_RETRY_BUDGET_SECONDS="1",
        )

        answer = post(instance, "/fullstory", event_bytes("fullstory-custom-event.json"))

        assert (answer["status"], answer["reason"]) == (503, "queue_unavailable")
        assert "sdk-key" not in json.dumps(answer)
        assert up.calls("POST", "/v1/projects/p/topics/t:publish")


def test_a_malformed_webhook_is_refused_at_once_in_queue_mode(make_instance: Callable[..., Instance]) -> None:
    instance = make_instance(FS2SPLIT_DELIVERY="queue", FS2SPLIT_PUBSUB_TOPIC=TOPIC, SPLIT_API_KEY="sdk-key")

    answer = post(instance, "/fullstory", b"{not json")

    assert (answer["status"], answer["reason"]) == (400, "invalid_json")
    assert instance.queue is None  # no queue client was even built


def test_a_queue_that_hangs_gets_a_503_within_the_retry_budget(
    make_instance: Callable[..., Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeUpstream() as up:
        up.script("POST", "/v1/projects/p/topics/t:publish", *[Fault(delay=10)] * 10)
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{up.port}")
        instance = make_instance(
            FS2SPLIT_DELIVERY="queue", FS2SPLIT_PUBSUB_TOPIC=TOPIC, SPLIT_API_KEY="k", FS2SPLIT_RETRY_BUDGET_SECONDS="1"
        )
        started = time.monotonic()

        answer = post(instance, "/fullstory", event_bytes("fullstory-custom-event.json"))

        assert (answer["status"], answer["reason"]) == (503, "queue_unavailable")
        assert time.monotonic() - started < 3  # the 1 s budget plus one attempt's floor, not 10 s
