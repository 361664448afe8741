"""The real FME Python SDK (``splitio_client``) in standalone mode (not localhost, which never calls a
listener), polling a loopback server that plays FME's backend and FullStory's API. Starts real SDK threads
and a loopback server, hence the ``e2e`` mark."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from fs2split.impressions.listener import FullStoryImpressionListener
from tests.support.upstream import FakeUpstream, Fault

splitio = pytest.importorskip("splitio")

pytestmark = pytest.mark.e2e

USERS = ("alice", "bob", "carol")
FS_KEY = "fs-key-for-the-sdk-test"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_flag("new_checkout", ["on", "off"], default="off", whitelist={"on": ["alice"]})
        server.add_flag("pricing_page", ["v1", "v2"], default="v1", whitelist={"v2": ["bob", "carol"]})
        yield server


@pytest.fixture
def listener(up: FakeUpstream) -> Iterator[FullStoryImpressionListener]:
    built = FullStoryImpressionListener(FS_KEY, up.fullstory_url, environment_name="Production", env={})
    yield built
    built.close(timeout_s=0)


@pytest.fixture
def client(up: FakeUpstream, listener: FullStoryImpressionListener) -> Iterator[Any]:
    factory = splitio.get_factory(
        "server-side-sdk-key",
        **up.sdk_urls(),  # keyword arguments: inside config they would be ignored and the real hosts called
        config={
            "impressionListener": listener,
            "streamingEnabled": False,
            "impressionsMode": "optimized",  # the default; the listener still sees every evaluation
            "IPAddressesEnabled": False,
        },
    )
    try:
        factory.block_until_ready(5)
        yield factory.client()
    finally:
        destroyed = threading.Event()
        factory.destroy(destroyed)
        destroyed.wait(5)


def test_given_hundreds_of_evaluations_then_fullstory_gets_one_event_per_user_flag_and_treatment(
    up: FakeUpstream, listener: FullStoryImpressionListener, client: Any
) -> None:
    treatments = Counter()
    for _ in range(100):
        for user in USERS:
            for flag in ("new_checkout", "pricing_page"):
                treatments[(user, flag, client.get_treatment(user, flag))] += 1

    assert listener.flush(5)
    sent = Counter(
        (e["user"]["uid"], e["properties"]["impression"]["feature"], e["properties"]["impression"]["treatment"])
        for e in up.fullstory_events()
    )
    assert sent == dict.fromkeys(treatments, 1)
    assert set(treatments) == {
        ("alice", "new_checkout", "on"),
        ("bob", "new_checkout", "off"),
        ("carol", "new_checkout", "off"),
        ("alice", "pricing_page", "v1"),
        ("bob", "pricing_page", "v2"),
        ("carol", "pricing_page", "v2"),
    }
    assert listener.stats()["duplicates"] == 600 - 6


def test_given_an_sdk_evaluation_then_the_event_carries_the_sdks_impression_in_the_shared_shape(
    up: FakeUpstream, listener: FullStoryImpressionListener, client: Any
) -> None:
    assert client.get_treatment("alice", "new_checkout") == "on"

    assert listener.flush(5)
    [event] = up.fullstory_events()
    impression = event["properties"]["impression"]
    assert event["name"] == "split_evaluation"
    assert event["user"] == {"uid": "alice"}
    assert event["session"] == {"use_most_recent": True}
    assert impression | {"changeNumber": 0, "time": 0} == {
        "feature": "new_checkout",
        "treatment": "on",
        "keyName": "alice",
        "label": "whitelisted",
        "changeNumber": 0,
        "time": 0,
    }
    assert isinstance(impression["changeNumber"], int)
    assert impression["changeNumber"] > 0
    assert abs(impression["time"] / 1000 - time.time()) < 60
    assert event["properties"]["sdkLanguageVersion"] == "python-10.7.0"
    assert event["properties"]["environmentName"] == "Production"
    [call] = up.calls("POST", "/v2/events")
    assert call.headers["authorization"] == f"Basic {FS_KEY}"


def test_given_a_hanging_fullstory_then_sdk_evaluations_are_not_slowed(
    up: FakeUpstream, listener: FullStoryImpressionListener, client: Any
) -> None:
    up.script("POST", "/v2/events", *[Fault(delay=3)] * 50)

    started = time.perf_counter()
    for n in range(300):
        client.get_treatment(f"user-{n}", "new_checkout")
    elapsed = time.perf_counter() - started

    assert elapsed < 3.0  # a sanity ceiling: had any call waited for FullStory, 300 would take minutes
    assert listener.stats()["queued"] == 300
    up.stop()  # end the hang so the fixtures can close
