"""Queue mode on GCP, end to end: the Cloud SDK's Pub/Sub emulator, the webhook and the ``drain`` function each
served by the real functions-framework CLI, and the loopback FME and FullStory."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import event_bytes
from tests.support.queues import PubSubEmulator, free_port
from tests.support.upstream import FakeUpstream, Fault

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "functions-framework"
USER = "6915774531905556"
PROJECT = "fs2split-test"


class Served:
    """``functions-framework --target <target>`` serving main.py on a free loopback port."""

    def __init__(self, target: str, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPLIT_", "FULLSTORY_", "FS2SPLIT_"))}
        self.process = subprocess.Popen(
            [str(CLI), "--target", target, "--source", "main.py", "--host", "127.0.0.1", "--port", port],
            cwd=ROOT,
            env={**clean, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.head(self.url, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"functions-framework did not start:\n{self.output}")

    output = ""

    def stop(self) -> str:
        self.process.terminate()
        self.output, _ = self.process.communicate(timeout=10)
        return self.output


@pytest.fixture(scope="module")
def emulator() -> Iterator[PubSubEmulator]:
    server = PubSubEmulator()
    yield server
    server.stop()


@pytest.fixture
def pubsub(emulator: PubSubEmulator) -> dict[str, str]:
    name = f"t{time.monotonic_ns()}"
    topic, dead_topic = f"projects/{PROJECT}/topics/{name}", f"projects/{PROJECT}/topics/{name}-dead"
    subscription = f"projects/{PROJECT}/subscriptions/{name}"
    emulator.put(topic)
    emulator.put(dead_topic)
    emulator.put(f"projects/{PROJECT}/subscriptions/{name}-dead", {"topic": dead_topic})
    emulator.put(
        subscription,
        {
            "topic": topic,
            "ackDeadlineSeconds": 30,
            "deadLetterPolicy": {"deadLetterTopic": dead_topic, "maxDeliveryAttempts": 5},
        },
    )
    return {"topic": topic, "subscription": subscription, "dead": f"projects/{PROJECT}/subscriptions/{name}-dead"}


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        up.add_user(USER, "customer-42")
        yield up


@pytest.fixture
def served(emulator: PubSubEmulator, pubsub: dict[str, str], upstream: FakeUpstream) -> Iterator[dict[str, Served]]:
    env = {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "FS2SPLIT_DELIVERY": "queue",
        "FS2SPLIT_PUBSUB_TOPIC": pubsub["topic"],
        "FS2SPLIT_PUBSUB_SUBSCRIPTION": pubsub["subscription"],
        "FS2SPLIT_DRAIN_BACKOFF_SECONDS": "1",
        "FS2SPLIT_DRAIN_SECONDS": "20",
        "FS2SPLIT_RETRY_BUDGET_SECONDS": "1",
        "FS2SPLIT_RETRY_BACKOFF_SECONDS": "0",
        "SPLIT_API_KEY": "sdk-key",
        "FULLSTORY_API_KEY": "fs-key",
        "SPLIT_EVENTS_URL": upstream.split_events_url,
        "FULLSTORY_API_URL": upstream.fullstory_url,
    }
    webhook, drain = Served("fs2split", env), Served("drain", env)
    yield {"webhook": webhook, "drain": drain}
    webhook.stop()
    drain.stop()


def custom_event(n: int) -> bytes:
    return json.dumps(
        {
            "eventName": "recording.event.custom",
            "version": 1,
            "data": {
                "name": "Plan Upgraded",
                "properties": {"seats_int": n},
                "sessionUrl": f"https://app.fullstory.com/ui/TN1/session/{USER}:5557778531805533",
                "timestamp": "2026-12-01T10:00:00.000Z",
            },
        }
    ).encode()


def run_drain(served: dict[str, Served]) -> dict[str, Any]:
    answer = requests.post(f"{served['drain'].url}/", timeout=30)
    return {"status": answer.status_code, **answer.json()}


def positions(upstream: FakeUpstream) -> list[int]:
    return sorted(e["properties"]["seats_int"] for e in upstream.fme_events())


def test_events_wait_in_pubsub_until_the_drain_delivers_them_in_one_fme_call(
    served: dict[str, Served], upstream: FakeUpstream
) -> None:
    for n in range(4):
        answer = requests.post(f"{served['webhook'].url}/fullstory", data=custom_event(n), timeout=10)
        assert (answer.status_code, answer.json()["reason"]) == (200, "queued")
    assert upstream.calls("POST", "/api/events/bulk") == []

    drained = run_drain(served)

    assert (drained["status"], drained["reason"], drained["messages"], drained["events_sent"]) == (200, "drained", 4, 4)
    assert positions(upstream) == [0, 1, 2, 3]
    assert len(upstream.fme_posts()) == 1
    assert run_drain(served)["messages"] == 0


def test_every_event_reaches_fme_exactly_once_across_an_fme_outage(
    served: dict[str, Served], upstream: FakeUpstream
) -> None:
    for n in range(5):
        requests.post(f"{served['webhook'].url}/fullstory", data=custom_event(n), timeout=10)
    upstream.script("POST", "/api/events/bulk", *[Fault(status=503)] * 50)

    during = run_drain(served)

    assert (during["status"], during["messages"], during["failed"]) == (200, 5, 5)
    assert upstream.fme_events() == []
    upstream.clear_scripts()
    time.sleep(1.5)  # the backoff given back as the messages' ack deadline
    after = run_drain(served)
    assert (after["messages"], after["events_sent"], after["failed"]) == (5, 5, 0)
    assert positions(upstream) == [0, 1, 2, 3, 4]


def test_impressions_survive_a_fullstory_outage_that_outlasts_fmes_single_retry(
    served: dict[str, Served], upstream: FakeUpstream
) -> None:
    upstream.script("POST", "/v2/events", *[Fault(status=503)] * 50)
    body = event_bytes("split-impressions-webhook.json")
    url = f"{served['webhook'].url}/split/impressions"

    assert requests.post(url, data=body, timeout=10).json()["reason"] == "queued"
    assert run_drain(served)["failed"] == 1
    time.sleep(0.4)  # FME's one retry, 300 ms later, would have failed too in direct mode
    assert run_drain(served)["messages"] == 0  # still invisible: the backoff is not over

    upstream.clear_scripts()
    time.sleep(1.2)
    assert run_drain(served)["events_sent"] == len(json.loads(body))
    assert {e["name"] for e in upstream.fullstory_events()} == {"split_evaluation"}


def test_drain_takes_only_post_and_pulls_nothing_otherwise(served: dict[str, Served], upstream: FakeUpstream) -> None:
    requests.post(f"{served['webhook'].url}/fullstory", data=custom_event(1), timeout=10)

    answer = requests.get(f"{served['drain'].url}/", timeout=10)

    assert (answer.status_code, answer.json()["reason"]) == (405, "method_not_allowed")
    assert run_drain(served)["messages"] == 1


def test_an_unreadable_message_reaches_the_dead_letter_topic(
    emulator: PubSubEmulator, pubsub: dict[str, str], served: dict[str, Served], upstream: FakeUpstream
) -> None:
    emulator.post(f"{pubsub['topic']}:publish", {"messages": [{"data": base64.b64encode(b"garbage").decode()}]})

    for _ in range(6):
        run_drain(served)

    dead = emulator.post(f"{pubsub['dead']}:pull", {"maxMessages": 10, "returnImmediately": True})
    assert [base64.b64decode(m["message"]["data"]) for m in dead.get("receivedMessages", [])] == [b"garbage"]
    assert run_drain(served)["messages"] == 0
    assert upstream.calls() == []


def test_a_drain_without_keys_pulls_nothing_and_sends_nothing(
    emulator: PubSubEmulator, pubsub: dict[str, str], upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fs2split.adapters import pubsub_drain
    from fs2split.instance import Instance

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    payload = base64.b64encode(b'{"v":1}').decode()
    emulator.post(f"{pubsub['topic']}:publish", {"messages": [{"data": payload}]})
    instance = Instance.from_env(
        {
            "FS2SPLIT_DELIVERY": "queue",
            "FS2SPLIT_PUBSUB_TOPIC": pubsub["topic"],
            "FS2SPLIT_PUBSUB_SUBSCRIPTION": pubsub["subscription"],
        },
        mapping_dir=None,
    )
    try:
        outcome = pubsub_drain.run(instance)
    finally:
        instance.upstream.close()

    assert (outcome.reason.value, outcome.body["messages"]) == ("dry_run", 0)
    waiting = emulator.post(f"{pubsub['subscription']}:pull", {"maxMessages": 10, "returnImmediately": True})
    assert len(waiting["receivedMessages"]) == 1  # still there, no delivery attempt spent
    assert upstream.calls() == []
