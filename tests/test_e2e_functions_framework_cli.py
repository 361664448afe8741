"""End to end: the real ``functions-framework`` CLI serves main.py, and a real loopback server
stands in for FullStory and FME. What a platform team runs locally is what is tested."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.fme_judge import assert_fme_accepts
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "functions-framework"
SECRETS = ("sdk-key-e2e", "fs-key-e2e")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPLIT_", "FULLSTORY_", "FS2SPLIT_"))}
        self.process = subprocess.Popen(
            [str(CLI), "--target", "fs2split", "--source", "main.py", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env={**clean, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() ends the gunicorn worker with it
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"functions-framework did not start:\n{self.output}")

    output = ""

    def stop(self) -> str:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.output, _ = self.process.communicate(timeout=10)
        # A worker still busy (a test's hanging upstream) outlives the arbiter's exit: end the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.returncode is None:
            self.output, _ = self.process.communicate(timeout=10)
        return self.output


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        up.add_user("6915774531905556", "customer-42")
        yield up


@pytest.fixture
def live(upstream: FakeUpstream) -> Iterator[Served]:
    served = Served(
        {
            "SPLIT_API_KEY": SECRETS[0],
            "FULLSTORY_API_KEY": SECRETS[1],
            "SPLIT_EVENTS_URL": upstream.split_events_url,
            "FULLSTORY_API_URL": upstream.fullstory_url,
        }
    )
    yield served
    served.stop()


def test_fullstory_webhook_reaches_fme_keyed_by_uid_through_the_real_cli(upstream: FakeUpstream, live: Served) -> None:
    body = (ROOT / "examples" / "fullstory-custom-event.json").read_bytes()

    response = requests.post(f"{live.url}/fullstory", data=body, timeout=10)

    assert (response.status_code, response.json()["reason"]) == (200, "delivered")
    [event] = upstream.fme_events()
    assert event["key"] == "customer-42"
    assert event["eventTypeId"] == "Product_Added"
    assert_fme_accepts(event)
    [lookup] = upstream.calls("GET", "/v2/users/")
    assert lookup.headers["authorization"] == f"Basic {SECRETS[1]}"
    [post] = upstream.calls("POST", "/api/events/bulk")
    assert post.headers["authorization"] == f"Bearer {SECRETS[0]}"


def test_every_request_logs_one_json_line_and_never_a_key(upstream: FakeUpstream, live: Served) -> None:
    body = (ROOT / "examples" / "fullstory-custom-event.json").read_bytes()
    requests.post(f"{live.url}/fullstory", data=body, timeout=10)
    requests.post(f"{live.url}/fullstory", data=b"{broken", timeout=10)

    output = live.stop()

    request_lines = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"route"' in line]
    assert [(line["route"], line["status"], line["reason"]) for line in request_lines][-2:] == [
        ("fullstory", 200, "delivered"),
        ("fullstory", 400, "invalid_json"),
    ]
    assert all({"severity", "message", "latency_ms"} <= set(line) for line in request_lines)
    assert not any(secret in output for secret in SECRETS)


def test_upstream_outage_is_a_503_to_the_sender_through_the_real_cli(upstream: FakeUpstream, live: Served) -> None:
    body = (ROOT / "examples" / "fullstory-custom-event.json").read_bytes()
    upstream.stop()

    response = requests.post(f"{live.url}/fullstory", data=body, timeout=20)

    assert (response.status_code, response.json()["reason"]) == (503, "fullstory_unavailable")


def test_default_local_run_is_a_dry_run_that_needs_no_keys() -> None:
    served = Served({})
    try:
        body = (ROOT / "examples" / "fullstory-custom-event.json").read_bytes()
        response = requests.post(f"{served.url}/fullstory", data=body, timeout=10)
    finally:
        served.stop()

    assert (response.status_code, response.json()["reason"]) == (200, "dry_run")
    assert response.json()["events"][0]["key"] == "6915774531905556"
