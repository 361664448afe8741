"""``python -m fs2split redrive`` on Pub/Sub, against the Cloud SDK's Pub/Sub emulator started by the tests:
the dead-letter subscription is found from the drain subscription's dead-letter policy, dead letters are
published back to the webhook's topic with their attributes and acknowledged only then, a dry run moves
nothing, and a failure half way loses no message."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from fs2split.__main__ import main
from fs2split.redrive import pubsub
from tests.support.redrive_servers import pubsub_emulator, pubsub_emulator_missing

pytestmark = pytest.mark.skipif(pubsub_emulator_missing() is not None, reason=str(pubsub_emulator_missing()))
PROJECT = "projects/fs2split-test"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with pubsub_emulator() as host:
        yield host


class Names:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.topic = f"{PROJECT}/topics/work-{tag}"
        self.subscription = f"{PROJECT}/subscriptions/drain-{tag}"
        self.dead_topic = f"{PROJECT}/topics/dead-{tag}"
        self.dead_subscription = f"{PROJECT}/subscriptions/dead-{tag}"


@pytest.fixture
def names(emulator: str, monkeypatch: pytest.MonkeyPatch) -> Names:
    """The queue-mode layout: a topic, the drain's subscription with a dead-letter topic, and a subscription
    on the dead-letter topic that keeps the dead letters."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator)
    n = Names()
    admin(emulator, "PUT", n.topic, {})
    admin(emulator, "PUT", n.dead_topic, {})
    admin(emulator, "PUT", n.dead_subscription, {"topic": n.dead_topic})
    policy = {"deadLetterTopic": n.dead_topic, "maxDeliveryAttempts": 5}
    admin(emulator, "PUT", n.subscription, {"topic": n.topic, "deadLetterPolicy": policy})
    monkeypatch.setenv("FS2SPLIT_PUBSUB_TOPIC", n.topic)
    monkeypatch.setenv("FS2SPLIT_PUBSUB_SUBSCRIPTION", n.subscription)
    return n


def admin(host: str, verb: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = requests.request(verb, f"http://{host}/v1/{name}", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def dead_letter(host: str, names: Names, count: int) -> set[str]:
    """Messages as the drain's dead-letter policy leaves them: on the dead-letter topic."""
    bodies = {f'{{"webhook": {n}}}' for n in range(count)}
    messages = [{"data": base64.b64encode(b.encode()).decode(), "attributes": {"kind": "fullstory"}} for b in bodies]
    admin(host, "POST", f"{names.dead_topic}:publish", {"messages": messages})
    return bodies


def take_all(host: str, subscription: str) -> list[dict[str, Any]]:
    """Every message now available on the subscription, acknowledged as read."""
    taken: list[dict[str, Any]] = []
    empty = 0
    while empty < 2:
        pulled = admin(host, "POST", f"{subscription}:pull", {"maxMessages": 1000, "returnImmediately": True})
        received = pulled.get("receivedMessages", [])
        empty = 0 if received else empty + 1
        if received:
            admin(host, "POST", f"{subscription}:acknowledge", {"ackIds": [r["ackId"] for r in received]})
            taken.extend(r["message"] for r in received)
    return taken


def bodies_of(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(base64.b64decode(m["data"]).decode() for m in messages)


def test_redrive_publishes_every_dead_letter_back_to_the_topic_with_its_attributes(
    emulator: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = dead_letter(emulator, names, 150)

    assert main(["redrive"]) == 0

    back = take_all(emulator, names.subscription)
    assert bodies_of(back) == sorted(bodies)
    assert {m["attributes"]["kind"] for m in back} == {"fullstory"}
    assert take_all(emulator, names.dead_subscription) == []
    assert f"moved 150 message(s) from {names.dead_subscription}" in capsys.readouterr().out


def test_dry_run_counts_the_dead_letters_and_moves_none(
    emulator: str, names: Names, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = dead_letter(emulator, names, 12)

    assert main(["redrive", "--dry-run"]) == 0

    assert "12 dead-lettered message(s)" in capsys.readouterr().out
    assert take_all(emulator, names.subscription) == []
    assert bodies_of(take_all(emulator, names.dead_subscription)) == sorted(bodies)


class _DropsTheSecondPublish(HTTPAdapter):
    """The network between redrive and Pub/Sub fails once, on the second publish."""

    publishes = 0

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if str(request.url).endswith(":publish"):
            type(self).publishes += 1
            if type(self).publishes == 2:
                raise requests.ConnectionError("connection reset")
        return super().send(request, *args, **kwargs)


def test_a_failure_half_way_loses_no_message_and_a_second_run_moves_the_rest(emulator: str, names: Names) -> None:
    bodies = dead_letter(emulator, names, 250)
    session = requests.Session()
    session.mount("http://", _DropsTheSecondPublish())

    first = pubsub.redrive(names.topic, names.subscription, api=pubsub.PubSub(session), timeout_s=30)
    second = pubsub.redrive(names.topic, names.subscription, timeout_s=30)

    assert first.error is not None
    assert (first.moved, second.moved, second.error) == (100, 150, None)
    assert bodies_of(take_all(emulator, names.subscription)) == sorted(bodies)
    assert take_all(emulator, names.dead_subscription) == []


def test_a_dead_letter_topic_with_two_subscriptions_needs_the_setting_that_names_one(
    emulator: str, names: Names, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin(emulator, "PUT", names.dead_subscription + "-audit", {"topic": names.dead_topic})
    bodies = dead_letter(emulator, names, 3)

    assert main(["redrive"]) == 1
    assert "FS2SPLIT_PUBSUB_DEAD_LETTER_SUBSCRIPTION" in capsys.readouterr().err

    monkeypatch.setenv("FS2SPLIT_PUBSUB_DEAD_LETTER_SUBSCRIPTION", names.dead_subscription)
    assert main(["redrive"]) == 0
    assert bodies_of(take_all(emulator, names.subscription)) == sorted(bodies)


def test_a_subscription_without_a_dead_letter_policy_is_refused_with_the_reason(
    emulator: str, names: Names, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = names.subscription + "-plain"
    admin(emulator, "PUT", plain, {"topic": names.topic})
    monkeypatch.setenv("FS2SPLIT_PUBSUB_SUBSCRIPTION", plain)

    assert main(["redrive"]) == 1

    assert "no dead-letter policy" in capsys.readouterr().err
