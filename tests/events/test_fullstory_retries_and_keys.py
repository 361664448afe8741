"""What FullStory's retries and keys meet, through both entry points in main.py against a loopback
FullStory and FME: Stream bearer tokens, redelivery told from repetition, answers FullStory retries,
and the key role the user lookup needs."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from functions_framework import create_app

import main
from fs2split.events.signature import sign
from fs2split.logs import LOGGER_NAME
from tests.conftest import event_bytes, event_json
from tests.support.entry_points import ENTRY_POINTS, Answer, post
from tests.support.upstream import FakeUpstream, Fault

TOKEN = "stream-token-3f9a0c77"
SECRET = "webhook-secret-81d2"
ORG = "o-1ABC-na1"
FS_KEY = "fs-standard-key-55aa"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_user("6915774531905556", "customer-42")
        yield server


@pytest.fixture(params=ENTRY_POINTS)
def entry(request: pytest.FixtureRequest, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SPLIT_API_KEY", "sdk-key")
    monkeypatch.setenv("SPLIT_EVENTS_URL", up.split_events_url)
    monkeypatch.setenv("FULLSTORY_API_URL", up.fullstory_url)
    monkeypatch.setenv("FULLSTORY_API_KEY", FS_KEY)
    return str(request.param)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage() + " " + json.dumps(getattr(record, "fields", {}), default=str))

    handler = Collect(level=logging.DEBUG)
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    try:
        yield lines
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)


def send(entry: str, body: bytes | dict[str, Any], path: str = "/fullstory", **headers: str) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return post(entry, path, raw, headers)


def stream(**changes: Any) -> dict[str, Any]:
    document = event_json("fullstory-stream-flat.json")
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def signature_header(body: bytes, secret: str = SECRET) -> str:
    stamp = str(int(time.time()))
    return f"o:{ORG},t:{stamp},v:{sign(secret, body, ORG, stamp)}"


# --- Stream bearer token ---------------------------------------------------------------------------------------


def test_a_stream_with_the_right_bearer_token_is_delivered(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN", TOKEN)

    answer = send(entry, stream(), Authorization=f"Bearer {TOKEN}")

    assert (answer.status, answer.body["reason"]) == (200, "delivered")
    assert len(up.fme_events()) == 1


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_stream_without_the_right_token_is_401_token_invalid_and_the_token_is_not_echoed(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch, logged: list[str], authorization: str | None
) -> None:
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN", TOKEN)
    headers = {"Authorization": authorization} if authorization else {}

    answer = send(entry, stream(), **headers)

    assert (answer.status, answer.body["reason"]) == (401, "token_invalid")
    assert up.fme_events() == []
    assert TOKEN not in json.dumps(answer.body)
    assert not any(TOKEN in line for line in logged)


def test_with_a_secret_and_a_token_a_valid_signature_alone_is_enough(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN", TOKEN)
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", SECRET)
    body = event_bytes("fullstory-custom-event.json")

    answer = send(entry, body, **{"Fullstory-Signature": signature_header(body)})

    assert (answer.status, answer.body["reason"]) == (200, "delivered")


def test_with_a_secret_and_a_token_a_valid_token_alone_is_enough(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN", TOKEN)
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", SECRET)

    answer = send(entry, stream(), Authorization=f"Bearer {TOKEN}")

    assert (answer.status, answer.body["reason"]) == (200, "delivered")


def test_with_a_secret_and_a_token_a_bad_signature_without_token_is_signature_invalid(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN", TOKEN)
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", SECRET)
    body = event_bytes("fullstory-custom-event.json")

    answer = send(entry, body, **{"Fullstory-Signature": signature_header(body, secret="another-secret")})

    assert (answer.status, answer.body["reason"]) == (401, "signature_invalid")
    assert up.fme_events() == []


def test_with_a_secret_and_a_token_neither_credential_is_token_invalid(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN", TOKEN)
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", SECRET)

    answer = send(entry, stream())

    assert (answer.status, answer.body["reason"]) == (401, "token_invalid")


def test_the_stream_token_can_come_from_a_secret_reference_and_its_failure_is_503(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reference that cannot be read (no cloud here): the Stream must be retried, not refused for good.
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN_SECRET", "projects/p/secrets/fs-stream-token/versions/1")
    monkeypatch.setenv("FS2SPLIT_RETRY_BUDGET_SECONDS", "1")

    answer = send(entry, stream(), Authorization=f"Bearer {TOKEN}")

    assert (answer.status, answer.body["reason"]) == (503, "secret_unavailable")
    assert up.fme_events() == []


# --- redelivery and repetition ---------------------------------------------------------------------------------


def test_a_redelivered_stream_with_other_whitespace_and_key_order_is_a_duplicate(entry: str, up: FakeUpstream) -> None:
    document = stream()
    compact = json.dumps(document, separators=(",", ":")).encode()
    spaced = json.dumps(dict(reversed(list(document.items()))), indent=4).encode()

    first, second = send(entry, compact), send(entry, spaced)

    assert (first.body["reason"], second.body["reason"]) == ("delivered", "duplicate")
    assert len(up.fme_events()) == 1


def test_two_identical_streams_without_event_time_are_both_delivered(entry: str, up: FakeUpstream) -> None:
    body = json.dumps(stream(event_time=None)).encode()

    first, second = send(entry, body), send(entry, body)

    assert (first.body["reason"], second.body["reason"]) == ("delivered", "delivered")
    assert len(up.fme_events()) == 2


def test_a_redelivery_while_the_first_is_still_sending_is_503_in_progress_with_retry_after(
    entry: str, up: FakeUpstream
) -> None:
    up.script("POST", "/api/events/bulk", Fault(delay=0.6))
    body = json.dumps(stream()).encode()
    first: list[Answer] = []
    sender = threading.Thread(target=lambda: first.append(send(entry, body)))
    sender.start()
    assert up.wait_for(lambda: len(up.calls("POST", "/api/events/bulk")) == 1)

    second = send(entry, body)
    sender.join()

    assert (second.status, second.body["reason"]) == (503, "in_progress")
    assert 1 <= int(second.headers["retry-after"]) <= 10
    assert first[0].body["reason"] == "delivered"
    assert len(up.fme_events()) == 1


def test_impressions_still_being_delivered_elsewhere_are_503_in_progress_with_retry_after(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FS2SPLIT_RETRY_BUDGET_SECONDS", "1")
    # The first request's FullStory call outlasts the second request's patience (its budget less a floor).
    up.script("POST", "/v2/events", Fault(delay=0.9))
    body = event_bytes("split-impressions-webhook.json")
    first: list[Answer] = []
    sender = threading.Thread(target=lambda: first.append(send(entry, body, path="/split/impressions")))
    sender.start()
    assert up.wait_for(lambda: len(up.calls("POST", "/v2/events")) == 1)

    second = send(entry, body, path="/split/impressions")
    sender.join()

    assert (second.status, second.body["reason"]) == (503, "in_progress")
    assert 1 <= int(second.headers["retry-after"]) <= 10


# --- key roles -------------------------------------------------------------------------------------------------


def test_a_standard_key_refused_by_the_users_api_is_502_fullstory_key_forbidden_naming_the_role(
    entry: str, up: FakeUpstream, logged: list[str]
) -> None:
    up.script("GET", "/v2/users/", Fault(status=403))

    answer = send(entry, event_bytes("fullstory-custom-event.json"))

    assert (answer.status, answer.body["reason"]) == (502, "fullstory_key_forbidden")
    assert "Admin or Architect" in answer.body["message"]
    assert FS_KEY not in json.dumps(answer.body)
    assert not any(FS_KEY in line for line in logged)
    assert up.fme_events() == []


def test_a_401_from_the_users_api_stays_fullstory_rejected(entry: str, up: FakeUpstream) -> None:
    up.script("GET", "/v2/users/", Fault(status=401))

    answer = send(entry, event_bytes("fullstory-custom-event.json"))

    assert (answer.status, answer.body["reason"]) == (502, "fullstory_rejected")


# --- the signature window, as FullStory's late retries meet it ---------------------------------------------------


def signed_at(body: bytes, stamp: str) -> str:
    return f"o:{ORG},t:{stamp},v:{sign(SECRET, body, ORG, stamp)}"


@pytest.mark.parametrize(("age_s", "status"), [(5 * 3600, 200), (6 * 3600 + 60, 401), (-301, 401), (-60, 200)])
def test_a_signature_is_accepted_for_six_hours_and_up_to_five_minutes_ahead(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch, age_s: int, status: int
) -> None:
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", SECRET)
    body = event_bytes("fullstory-custom-event.json")

    answer = send(entry, body, **{"Fullstory-Signature": signed_at(body, str(int(time.time()) - age_s))})

    assert answer.status == status
    assert len(up.fme_events()) == (1 if status == 200 else 0)


def test_a_signature_header_repeating_its_timestamp_is_401(
    entry: str, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", SECRET)
    body = event_bytes("fullstory-custom-event.json")
    now = str(int(time.time()))

    answer = send(entry, body, **{"Fullstory-Signature": f"{signed_at(body, now)},t:{int(now) - 99999}"})

    assert (answer.status, answer.body["reason"]) == (401, "signature_invalid")
    assert up.fme_events() == []


def test_healthz_says_a_stream_token_is_required_without_showing_it(
    entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLSTORY_STREAM_TOKEN", TOKEN)

    answer = get_health(entry)

    assert answer["integrations"]["fullstory_to_fme"]["stream_token_required"] is True
    assert TOKEN not in json.dumps(answer)


def get_health(entry: str) -> dict[str, Any]:
    if entry == "cloud_functions":
        return create_app("fs2split", main.__file__).test_client().get("/healthz").get_json()  # type: ignore[no-any-return]
    event = {"version": "2.0", "rawPath": "/healthz", "headers": {}, "requestContext": {"http": {"method": "GET"}}}
    return json.loads(main.lambda_handler(event, None)["body"])  # type: ignore[no-any-return]
