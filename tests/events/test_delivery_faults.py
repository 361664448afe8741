"""Delivery under injected faults, against a real loopback server standing in for FullStory and
FME. The sender (FullStory) retries on anything but 2xx, so the promise is: every event is
either delivered exactly once, or refused to the sender; none is acknowledged and lost."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream, Fault

BULK = "/api/events/bulk"
USERS = "/v2/users/"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        for n in range(20):
            server.add_user(f"10{n}", f"customer-{n}")
        yield server


@pytest.fixture
def bridge(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(
        SPLIT_API_KEY="sdk-key",
        FULLSTORY_API_KEY="fs-key",
        SPLIT_EVENTS_URL=up.split_events_url,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="4",
        FS2SPLIT_READ_TIMEOUT_SECONDS="0.5",
    )


def webhook(user: int = 0, name: str = "Checkout", marker: int = 0) -> bytes:
    document = event_json("fullstory-custom-event.json")
    document["data"]["name"] = name
    document["data"]["sessionUrl"] = f"https://app.fullstory.com/ui/TN1/session/10{user}:{marker}"
    document["data"]["properties"] = {"marker_int": marker}
    return json.dumps(document).encode()


def deliver(bridge: Instance, body: bytes) -> Response:
    return handle(Request("POST", "/fullstory", {}, {}, body), bridge)


def test_fme_429_with_retry_after_is_waited_for_then_delivered_once(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(status=429, headers={"Retry-After": "1"}))

    response = deliver(bridge, webhook())

    assert response.body["reason"] == "delivered"
    first, second = up.calls("POST", BULK)
    assert second.at - first.at >= 0.95
    assert len(up.fme_events()) == 1


def test_a_run_of_500_502_503_is_retried_through_and_delivered_once(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(status=500), Fault(status=502), Fault(status=503))

    response = deliver(bridge, webhook())

    assert response.status == 200
    assert len(up.calls("POST", BULK)) == 4
    assert len(up.fme_events()) == 1


def test_connection_reset_is_retried_and_delivered_once(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(reset=True))

    response = deliver(bridge, webhook())

    assert response.status == 200
    assert len(up.fme_events()) == 1


def test_slow_answer_within_the_read_timeout_is_delivered_once(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(delay=0.3))

    assert deliver(bridge, webhook()).status == 200
    assert len(up.calls("POST", BULK)) == 1
    assert len(up.fme_events()) == 1


def test_slow_user_lookup_past_the_read_timeout_is_retried(up: FakeUpstream, bridge: Instance) -> None:
    up.script("GET", USERS, Fault(delay=1.0))

    response = deliver(bridge, webhook())

    assert response.status == 200
    assert len(up.calls("GET", USERS)) == 2
    assert len(up.fme_events()) == 1


def test_fullstory_rate_limit_on_lookup_is_honoured(up: FakeUpstream, bridge: Instance) -> None:
    up.script("GET", USERS, Fault(status=429, headers={"Retry-After": "1"}))

    response = deliver(bridge, webhook())

    assert response.status == 200
    first, second = up.calls("GET", USERS)
    assert second.at - first.at >= 0.95


def test_fme_outage_is_refused_to_the_sender_then_its_retry_delivers_once(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, *[Fault(status=503)] * 50)
    body = webhook()

    started = time.monotonic()
    refused = deliver(bridge, body)
    elapsed = time.monotonic() - started

    assert (refused.status, refused.body["reason"]) == (503, "fme_unavailable")
    assert up.fme_events() == []
    assert elapsed < 4 + 1.0  # within the budget, so the sender is still listening
    up.reset()
    retried = deliver(bridge, body)
    assert retried.body["reason"] == "delivered"
    assert len(up.fme_events()) == 1


def test_retry_after_longer_than_the_budget_is_passed_back_to_the_sender_at_once(
    up: FakeUpstream, bridge: Instance
) -> None:
    up.script("POST", BULK, Fault(status=429, headers={"Retry-After": "120"}))

    started = time.monotonic()
    response = deliver(bridge, webhook())

    assert time.monotonic() - started < 1.0
    assert (response.status, response.headers["Retry-After"]) == (503, "120")
    assert len(up.calls("POST", BULK)) == 1


def test_fullstory_outage_sends_nothing_to_fme_and_is_refused(up: FakeUpstream, bridge: Instance) -> None:
    up.script("GET", USERS, *[Fault(status=500)] * 50)

    response = deliver(bridge, webhook())

    assert (response.status, response.body["reason"]) == (503, "fullstory_unavailable")
    assert up.calls("POST", BULK) == []


def test_unreachable_fme_is_refused_not_acknowledged(make_instance: Any, up: FakeUpstream) -> None:
    closed_port_url = "http://127.0.0.1:9/api"  # discard port: nothing listens
    bridge = make_instance(
        SPLIT_API_KEY="sdk-key",
        FULLSTORY_API_KEY="fs-key",
        SPLIT_EVENTS_URL=closed_port_url,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="2",
    )

    response = deliver(bridge, webhook())

    assert (response.status, response.body["reason"]) == (503, "fme_unavailable")


def test_warm_instance_reuses_one_connection_for_many_webhooks(up: FakeUpstream, bridge: Instance) -> None:
    for marker in range(5):
        assert deliver(bridge, webhook(user=marker, marker=marker)).status == 200

    ports = {call.client_port for call in up.requests}
    assert len(ports) == 1


def test_redelivered_webhook_is_answered_200_without_a_second_event(up: FakeUpstream, bridge: Instance) -> None:
    body = webhook()

    first, again = deliver(bridge, body), deliver(bridge, body)

    assert (first.body["reason"], again.body["reason"]) == ("delivered", "duplicate")
    assert again.status == 200
    assert len(up.fme_events()) == 1


def test_a_failed_delivery_is_not_remembered_so_the_retry_goes_through(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(status=400, body={"message": "temporary validation glitch"}))
    body = webhook()

    assert deliver(bridge, body).status == 422
    assert deliver(bridge, body).body["reason"] == "delivered"
    assert len(up.fme_events()) == 1


def test_concurrent_redelivery_is_told_to_retry_instead_of_sending_twice(up: FakeUpstream, bridge: Instance) -> None:
    up.script("POST", BULK, Fault(delay=0.4))
    body = webhook()
    answers: list[Response] = []
    first = threading.Thread(target=lambda: answers.append(deliver(bridge, body)))

    first.start()
    assert up.wait_for(lambda: len(up.calls("POST", BULK)) == 1)
    second = deliver(bridge, body)
    first.join()

    assert (second.status, second.body["reason"]) == (503, "in_progress")
    assert 1 <= int(second.headers["Retry-After"]) <= 10
    assert answers[0].body["reason"] == "delivered"
    assert len(up.fme_events()) == 1


def test_fault_storm_loses_nothing_and_duplicates_nothing(up: FakeUpstream, make_instance: Any) -> None:
    """A sender that retries every non-2xx, against an upstream that fails at random: in the end
    every event is in FME exactly once."""
    bridge = make_instance(
        SPLIT_API_KEY="sdk-key",
        FULLSTORY_API_KEY="fs-key",
        SPLIT_EVENTS_URL=up.split_events_url,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="2",
        FS2SPLIT_RETRY_BACKOFF_SECONDS="0.01",
    )
    rng = random.Random(20261127)
    kinds = [Fault(status=429, headers={"Retry-After": "0"}), Fault(status=500), Fault(status=503), Fault(reset=True)]
    for route in (("POST", BULK), ("GET", USERS)):
        up.script(*route, *[rng.choice(kinds) if rng.random() < 0.5 else Fault() for _ in range(60)])
    bodies = {marker: webhook(user=marker % 20, marker=marker) for marker in range(30)}

    pending = dict(bodies)
    for _attempt in range(6):
        pending = {m: b for m, b in pending.items() if deliver(bridge, b).status >= 300}
        if not pending:
            break

    assert pending == {}
    markers = sorted(e["properties"]["marker_int"] for e in up.fme_events())
    assert markers == sorted(bodies)
