"""Gateways in front of FME and FullStory echo the request, Authorization header included, in their error
bodies. Here every upstream error answer on every path carries every configured secret; none of them may
appear in any response or any log line (issue 13, finding 1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from splitio.models.impressions import Impression

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.impressions.listener import FullStoryImpressionListener
from fs2split.instance import Instance
from fs2split.logs import LOGGER_NAME
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream, Fault

SECRETS = {
    "SPLIT_API_KEY": "sdk-key-EchoMe-1111",
    "FULLSTORY_API_KEY": "na1.fs-key-EchoMe-2222",
    "FULLSTORY_WEBHOOK_SECRET": "hook-secret-EchoMe-3333",
    "FULLSTORY_WEBHOOK_SECRET_PREVIOUS": "old-hook-secret-EchoMe-4444",
    "SPLIT_IMPRESSIONS_TOKEN": "impressions-token-EchoMe-5555",
}
STATUSES = [400, 401, 403, 404, 409, 422, 429, 500, 502, 503]


def echoes() -> list[tuple[str, bytes | str | dict[str, Any]]]:
    """Ways a proxy or gateway has sent the request back: JSON message, plain text, headers only."""
    every = " ".join(SECRETS.values())
    return [
        ("json", {"message": f"denied for Authorization: Bearer {SECRETS['SPLIT_API_KEY']}; seen: {every}"}),
        ("basic", {"message": f"Authorization: Basic {SECRETS['FULLSTORY_API_KEY']} is not valid"}),
        ("text", f"<html>upstream error. request headers: {every}</html>"),
        ("secrets-first", {"message": f"{every} Bearer {SECRETS['SPLIT_API_KEY']}"}),
    ]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_user("100", "customer-0")
        yield server


@pytest.fixture
def bridge(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(
        SPLIT_EVENTS_URL=up.split_events_url,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="2",
        FS2SPLIT_RETRY_BACKOFF_SECONDS="0.01",
        **SECRETS,
    )


def signed_webhook(marker: int) -> tuple[bytes, dict[str, str]]:
    document = event_json("fullstory-custom-event.json")
    # A new user each time: the uid cache must not hide the users API's answer.
    document["data"]["sessionUrl"] = f"https://app.fullstory.com/ui/TN1/session/{marker}:1"
    document["data"]["properties"] = {"marker_int": marker}
    body = json.dumps(document).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(SECRETS["FULLSTORY_WEBHOOK_SECRET"].encode(), body + f":o-1:{stamp}".encode(), hashlib.sha256)
    header = f"o:o-1,t:{stamp},v:{base64.b64encode(digest.digest()).decode()}"
    return body, {"fullstory-signature": header}


def impressions_body(marker: int) -> bytes:
    base = event_json("split-impressions-webhook.json")[0]
    return json.dumps([{**base, "key": f"customer-{marker}"}]).encode()


def call(bridge: Instance, route: str, marker: int) -> Response:
    if route == "impressions":
        query = {"token": SECRETS["SPLIT_IMPRESSIONS_TOKEN"]}
        return handle(Request("POST", "/split/impressions", {}, query, impressions_body(marker)), bridge)
    body, headers = signed_webhook(marker)
    return handle(Request("POST", "/fullstory", headers, {}, body), bridge)


PATHS = [
    ("fme events", "fullstory", "POST", "/api/events/bulk"),
    ("fullstory users", "fullstory", "GET", "/v2/users/"),
    ("fullstory events", "impressions", "POST", "/v2/events"),
]


@pytest.mark.parametrize(("path", "route", "method", "prefix"), PATHS, ids=[p[0] for p in PATHS])
def test_no_secret_echoed_by_an_upstream_reaches_a_response_or_a_log_line(
    up: FakeUpstream,
    bridge: Instance,
    capsys: pytest.CaptureFixture[str],
    path: str,
    route: str,
    method: str,
    prefix: str,
) -> None:
    answers: list[Response] = []
    faults_served = 0
    for marker, (status, (_, body)) in enumerate(((s, e) for s in STATUSES for e in echoes()), start=1):
        up.add_user(str(marker), f"customer-{marker}")
        up.script(method, prefix, *[Fault(status=status, body=body)] * 8)
        answers.append(call(bridge, route, marker))
        faults_served += sum(1 for rec in up.calls(method, prefix) if rec.fault is not None)
        up.reset()

    seen = capsys.readouterr().out + "".join(answer.body_bytes().decode() for answer in answers)
    assert faults_served >= len(STATUSES) * len(echoes())  # every echo was really answered to fs2split
    assert [name for name, value in SECRETS.items() if value in seen] == []


@pytest.mark.parametrize("status", [400, 401, 403, 422])
def test_no_secret_echoed_to_the_impression_listener_reaches_its_log(up: FakeUpstream, status: int) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage() + json.dumps(getattr(record, "fields", {}), default=str))

    handler = Collect(level=logging.DEBUG)
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    listener = FullStoryImpressionListener(env={**SECRETS, "FULLSTORY_API_URL": up.fullstory_url})
    try:
        for _, body in echoes():
            up.script("POST", "/v2/events", Fault(status=status, body=body))
        for n, _ in enumerate(echoes()):
            listener.log_impression({"impression": Impression(f"k{n}", "flag", "on", "rule", 1, None, 1, None, None)})
        assert up.wait_for(lambda: len(up.calls("POST", "/v2/events")) >= 1)
        listener.flush(3)
    finally:
        listener.close(timeout_s=1)
        logging.getLogger(LOGGER_NAME).removeHandler(handler)

    assert any("FullStory" in line for line in lines)  # the refusal was logged
    assert [name for name, value in SECRETS.items() if any(value in line for line in lines)] == []
