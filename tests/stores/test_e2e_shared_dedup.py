"""Two instances, one store: two real ``functions-framework`` processes serve main.py, each backend
against its real emulator, FullStory and FME played by the loopback FakeUpstream. What the issue
promises: more instances never mean duplicate events, and nothing is lost on the way."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import emulators
from tests.support.upstream import FakeUpstream, Fault
from tests.test_e2e_functions_framework_cli import Served

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
WEBHOOK = json.loads((ROOT.parent / "examples" / "fullstory-custom-event.json").read_text())
BULK = "/api/events/bulk"
# The lease is the retry budget plus 5 s: 5.5 s here.
BUDGET_S = 0.5


def webhook(marker: str) -> bytes:
    document: dict[str, Any] = copy.deepcopy(WEBHOOK)
    document["data"].setdefault("properties", {})["marker_str"] = marker
    return json.dumps(document).encode()


def delivered_markers(up: FakeUpstream) -> list[str]:
    return [event["properties"]["marker_str"] for event in up.fme_events() if "marker_str" in event["properties"]]


class Pair:
    """Two instances of fs2split on one shared store."""

    def __init__(self, up: FakeUpstream, store_env: dict[str, str]) -> None:
        env = {
            "SPLIT_API_KEY": "sdk-key-pair",
            "FULLSTORY_API_KEY": "fs-key-pair",
            "SPLIT_EVENTS_URL": up.split_events_url,
            "FULLSTORY_API_URL": up.fullstory_url,
            "FS2SPLIT_RETRY_BUDGET_SECONDS": str(BUDGET_S),
            **store_env,
        }
        self.a = Served(env)
        try:
            self.b = Served(env)
        except BaseException:
            self.a.stop()
            raise

    def post(self, which: Served, body: bytes) -> str:
        return str(requests.post(f"{which.url}/fullstory", data=body, timeout=20).json()["reason"])

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_user("6915774531905556", "customer-42")
        yield server


def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    name = emulators.unique("e2e")
    if request.param == "dynamodb":
        emulator = request.getfixturevalue("moto_server")
        emulators.create_table(emulator, name)
        return emulators.dynamodb_env(emulator, name)
    return emulators.firestore_env(request.getfixturevalue("firestore_emulator"), name)


@pytest.fixture(scope="module", params=["dynamodb", "firestore"])
def pair(request: pytest.FixtureRequest, up: FakeUpstream) -> Iterator[Pair]:
    served = Pair(up, store_env(request))
    yield served
    served.stop()


def test_the_same_webhook_to_both_instances_at_once_reaches_fme_once(up: FakeUpstream, pair: Pair) -> None:
    body = webhook(emulators.unique("concurrent"))
    up.script("POST", BULK, Fault(delay=0.3))  # the winner is still delivering when the other claims
    reasons: list[str] = []
    start = threading.Barrier(2)

    def send(which: Any) -> None:
        start.wait()
        reasons.append(pair.post(which, body))

    threads = [threading.Thread(target=send, args=(which,)) for which in (pair.a, pair.b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(reasons)[0] == "delivered"
    assert sorted(reasons)[1] in ("duplicate", "in_progress")
    assert delivered_markers(up).count(json.loads(body)["data"]["properties"]["marker_str"]) == 1


def test_the_same_webhook_to_one_instance_then_the_other_is_a_duplicate(up: FakeUpstream, pair: Pair) -> None:
    body = webhook(emulators.unique("sequential"))

    first, second = pair.post(pair.a, body), pair.post(pair.b, body)

    assert (first, second) == ("delivered", "duplicate")
    assert delivered_markers(up).count(json.loads(body)["data"]["properties"]["marker_str"]) == 1


def test_a_retry_on_the_other_instance_after_a_failed_delivery_goes_through(up: FakeUpstream, pair: Pair) -> None:
    body = webhook(emulators.unique("retry"))
    # FME fails and asks for more time than the budget holds: the first instance answers 503.
    up.script("POST", BULK, Fault(status=503, headers={"Retry-After": "30"}))

    first, retried = pair.post(pair.a, body), pair.post(pair.b, body)

    assert (first, retried) == ("fme_unavailable", "delivered")
    assert delivered_markers(up).count(json.loads(body)["data"]["properties"]["marker_str"]) == 1


@pytest.fixture(params=["dynamodb", "firestore"])
def doomed_pair(request: pytest.FixtureRequest, up: FakeUpstream) -> Iterator[Pair]:
    served = Pair(up, store_env(request))
    yield served
    served.stop()


def test_a_claim_left_by_a_killed_instance_is_taken_over_once_its_lease_runs_out(
    up: FakeUpstream, doomed_pair: Pair
) -> None:
    body = webhook(emulators.unique("killed"))
    marker = json.loads(body)["data"]["properties"]["marker_str"]
    lookups = len(up.calls("GET", "/v2/users/"))
    up.script("GET", "/v2/users/", Fault(delay=3))  # holds instance a after its claim
    killed = threading.Thread(target=lambda: _post_quietly(doomed_pair.a, body))
    killed.start()
    assert up.wait_for(lambda: len(up.calls("GET", "/v2/users/")) > lookups, timeout=10)
    claimed_at = time.monotonic()
    _kill_with_workers(doomed_pair.a)  # SIGKILL mid-delivery: no release, no done
    killed.join()

    blocked = doomed_pair.post(doomed_pair.b, body)
    reasons = [blocked]
    while reasons[-1] == "in_progress" and time.monotonic() - claimed_at < 15:
        time.sleep(0.5)
        reasons.append(doomed_pair.post(doomed_pair.b, body))

    assert blocked == "in_progress"
    assert reasons[-1] == "delivered"
    assert time.monotonic() - claimed_at > BUDGET_S + 3  # held by the lease, not released early
    assert delivered_markers(up).count(marker) == 1


def _post_quietly(which: Served, body: bytes) -> None:
    with contextlib.suppress(requests.RequestException):  # killed mid-request: no answer is the point
        requests.post(f"{which.url}/fullstory", data=body, timeout=20)


def _kill_with_workers(which: Served) -> None:
    """SIGKILL the CLI and the worker processes it forked (gunicorn serves in a child)."""
    pid = which.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    workers = [int(child) for child in children.read_text().split()] if children.exists() else []
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
    which.process.kill()
