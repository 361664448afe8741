"""Every request is answered within FS2SPLIT_RETRY_BUDGET_SECONDS + 1 s, whatever the connect and read
timeouts say: through both entry points, against a hanging upstream and one that drips its answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import main
from fs2split import instance as instance_module
from fs2split.app import handle
from fs2split.http_types import Request
from tests.conftest import event_bytes
from tests.support.upstream import FakeUpstream, Fault
from tests.test_e2e_functions_framework_cli import Served

BODY = event_bytes("fullstory-custom-event.json")
# A read timeout of 2 s fits once in the budget, not twice: the retry's attempt must be cut to what is left.
SLOW_TIMEOUTS = {
    "FS2SPLIT_RETRY_BUDGET_SECONDS": "3",
    "FS2SPLIT_READ_TIMEOUT_SECONDS": "2",
    "FS2SPLIT_CONNECT_TIMEOUT_SECONDS": "30",
}


@pytest.fixture
def hanging() -> Iterator[FakeUpstream]:
    """FullStory's users API never answers within the test."""
    with FakeUpstream() as up:
        up.script("GET", "/v2/users/", *[Fault(delay=60)] * 5)
        yield up


def env_for(up: FakeUpstream) -> dict[str, str]:
    return {
        "SPLIT_API_KEY": "sdk-key",
        "FULLSTORY_API_KEY": "fs-key",
        "SPLIT_EVENTS_URL": up.split_events_url,
        "FULLSTORY_API_URL": up.fullstory_url,
        **SLOW_TIMEOUTS,
    }


def test_a_hanging_upstream_against_a_3s_budget_is_answered_within_4s_on_lambda(
    hanging: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env_for(hanging).items():
        monkeypatch.setenv(name, value)
    instance_module.reset()
    event = {
        "version": "2.0",
        "rawPath": "/fullstory",
        "requestContext": {"http": {"method": "POST"}},
        "body": BODY.decode(),
    }

    started = time.monotonic()
    answer = main.lambda_handler(event, None)
    elapsed = time.monotonic() - started

    assert (answer["statusCode"], json.loads(answer["body"])["reason"]) == (503, "fullstory_unavailable")
    assert elapsed < 4


@pytest.mark.e2e
def test_a_hanging_upstream_against_a_3s_budget_is_answered_within_4s_by_the_real_cli(hanging: FakeUpstream) -> None:
    served = Served(env_for(hanging))
    try:
        started = time.monotonic()
        response = requests.post(f"{served.url}/fullstory", data=BODY, timeout=20)
        elapsed = time.monotonic() - started
    finally:
        served.stop()

    assert (response.status_code, response.json()["reason"]) == (503, "fullstory_unavailable")
    assert elapsed < 4


class DrippingServer:
    """Answers every request with a 200 whose body arrives one byte every 0.2 s, forever; counts requests."""

    def __init__(self) -> None:
        self.requests = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.requests += 1
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
                while not self._stop.wait(0.2):
                    conn.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


def test_an_answer_dripping_slower_than_the_budget_is_cut_at_the_budget(make_instance: Any) -> None:
    drip = DrippingServer()
    try:
        bridge = make_instance(
            SPLIT_API_KEY="sdk-key",
            FULLSTORY_API_KEY="fs-key",
            SPLIT_EVENTS_URL=drip.url + "/api",
            FULLSTORY_API_URL=drip.url,
            **SLOW_TIMEOUTS,
        )
        started = time.monotonic()
        response = handle(Request("POST", "/fullstory", {}, {}, BODY), bridge)
        elapsed = time.monotonic() - started
    finally:
        drip.close()

    assert (response.status, response.body["reason"]) == (503, "fullstory_unavailable")
    assert elapsed < 4
