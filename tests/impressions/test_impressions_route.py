"""``POST /split/impressions`` through the portable handler, with a real loopback server standing in for
FullStory. FME counts only an exact 200 as success and retries anything else once, so the promise is:
200 only when every impression is in FullStory; otherwise a status that says why, and nothing remembered
that FullStory did not accept."""

from __future__ import annotations

import base64
import copy
import dataclasses
import gzip
import io
import json
import logging
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fs2split.app import handle
from fs2split.config.keys import Keys, SecretUnavailable
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from fs2split.logs import LOGGER_NAME
from tests.conftest import event_bytes, event_json
from tests.support.upstream import FakeUpstream, Fault

PATH = "/split/impressions"
EVENTS = "/v2/events"
FS_KEY = "fs-key-0123456789"
TOKEN = "s3cr3t-impressions-token"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def bridge(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url)


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Each line the fs2split logger writes during the test, as text with its fields (it does not propagate)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage() + " " + json.dumps(getattr(record, "fields", {}), default=str))

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def post(instance: Instance, body: bytes | list[Any], *, token: str | None = None, **headers: str) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    query = {} if token is None else {"token": token}
    named = {name.lower().replace("_", "-"): value for name, value in headers.items()}
    return handle(Request("POST", PATH, named, query, raw), instance)


def impressions(count: int, **changes: Any) -> list[dict[str, Any]]:
    base = event_json("split-impressions-webhook.json")[0]
    return [{**base, "key": f"customer-{n}", "time": base["time"] + n, **changes} for n in range(count)]


def sent_uids(up: FakeUpstream) -> list[str]:
    return sorted(event["user"]["uid"] for event in up.fullstory_events())


# --- delivered -------------------------------------------------------------------------------------------------


def test_given_the_fme_fixture_as_plain_json_when_posted_then_200_and_fullstory_has_the_event(
    up: FakeUpstream, bridge: Instance
) -> None:
    response = post(bridge, event_bytes("split-impressions-webhook.json"))

    assert (response.status, response.body["reason"]) == (200, "delivered")
    assert up.fullstory_events() == [
        {
            "name": "split_evaluation",
            "timestamp": "2022-11-10T18:59:50.992Z",
            "user": {"uid": "customer-123"},
            "session": {"use_most_recent": True},
            "properties": {
                "impression": {
                    "feature": "new_checkout",
                    "treatment": "on",
                    "keyName": "customer-123",
                    "label": "default rule",
                    "changeNumber": 1667920819383,
                    "time": 1668106790992,
                },
                "environmentName": "Production",
                "sdkLanguageVersion": "python-10.7.0",
            },
        }
    ]


def test_given_a_delivery_then_fullstory_is_called_with_the_key_verbatim_and_an_idempotency_key(
    up: FakeUpstream, bridge: Instance
) -> None:
    post(bridge, event_bytes("split-impressions-webhook.json"))

    [call] = up.calls("POST", EVENTS)
    assert call.headers["authorization"] == f"Basic {FS_KEY}"
    assert call.headers["idempotency-key"].startswith("fs2split-imp-")
    assert call.headers["content-type"] == "application/json"


@pytest.mark.parametrize("header", [{}, {"content_encoding": "gzip"}], ids=["no-header", "content-encoding"])
def test_given_a_gzipped_body_when_posted_then_it_is_sniffed_inflated_and_delivered(
    up: FakeUpstream, bridge: Instance, header: dict[str, str]
) -> None:
    response = post(bridge, gzip.compress(event_bytes("split-impressions-webhook.json")), **header)

    assert (response.status, response.body["delivered"]) == (200, 1)
    assert sent_uids(up) == ["customer-123"]


def test_given_concatenated_gzip_members_then_they_are_one_stream(up: FakeUpstream, bridge: Instance) -> None:
    raw = json.dumps(impressions(2)).encode()
    body = gzip.compress(raw[:40]) + gzip.compress(raw[40:])

    response = post(bridge, body)

    assert (response.status, sent_uids(up)) == (200, ["customer-0", "customer-1"])


def test_given_valid_repeated_and_undeliverable_items_then_200_counts_each_and_only_valid_ones_are_sent(
    up: FakeUpstream, bridge: Instance
) -> None:
    response = post(bridge, event_bytes("split-impressions-mixed.json"))

    assert response.status == 200
    assert response.body | {"message": ""} == {
        "reason": "delivered",
        "message": "",
        "impressions": 6,
        "delivered": 2,
        "duplicates": 1,
        "undeliverable": 3,
        "not_delivered": 0,
        "problems": {"no_key": 1, "no_flag": 1, "not_an_object": 1},
    }
    assert sent_uids(up) == ["customer-1", "customer-2"]
    [bucketed] = [e for e in up.fullstory_events() if e["user"]["uid"] == "customer-2"]
    assert bucketed["properties"]["impression"]["bucketingKey"] == "account-77"
    assert bucketed["properties"]["sdkLanguageVersion"] == "javascript-10.22.0"


def test_given_only_undeliverable_items_then_200_ignored_and_nothing_is_sent(
    up: FakeUpstream, bridge: Instance
) -> None:
    response = post(bridge, [{"split": "f", "treatment": "on"}, {"key": "k", "treatment": "on"}, 42])

    assert (response.status, response.body["reason"], response.body["undeliverable"]) == (200, "ignored", 3)
    assert up.calls("POST", EVENTS) == []


def test_given_an_empty_array_then_200_and_nothing_is_sent(up: FakeUpstream, bridge: Instance) -> None:
    response = post(bridge, [])

    assert (response.status, response.body["impressions"]) == (200, 0)
    assert up.requests == []


def test_given_1000_impressions_when_posted_then_all_are_delivered_well_inside_fmes_patience(
    up: FakeUpstream, bridge: Instance
) -> None:
    body = gzip.compress(json.dumps(impressions(1000)).encode())

    started = time.monotonic()
    response = post(bridge, body)
    elapsed = time.monotonic() - started

    assert (response.status, response.body["delivered"]) == (200, 1000)
    assert len({e["user"]["uid"] for e in up.fullstory_events()}) == 1000
    assert elapsed < 20  # a sanity ceiling only; speed figures belong to the benchmark


def test_given_a_slow_fullstory_then_impressions_are_sent_concurrently(up: FakeUpstream, bridge: Instance) -> None:
    up.latency = 0.3

    response = post(bridge, impressions(16))

    assert response.status == 200
    calls = up.calls("POST", EVENTS)
    first = min(call.at for call in calls)
    # Sequential sending would space arrivals 0.3 s apart; concurrent sending sends them all at once.
    assert sum(call.at < first + 0.25 for call in calls) >= 8


# --- duplicates ------------------------------------------------------------------------------------------------


def test_given_the_same_batch_twice_then_the_second_is_200_duplicate_and_nothing_is_sent_again(
    up: FakeUpstream, bridge: Instance
) -> None:
    post(bridge, impressions(3))

    again = post(bridge, impressions(3))

    assert (again.status, again.body["reason"], again.body["duplicates"]) == (200, "duplicate", 3)
    assert len(up.calls("POST", EVENTS)) == 3


def test_given_a_later_impression_of_the_same_treatment_within_the_window_then_it_is_not_sent_again(
    up: FakeUpstream, bridge: Instance
) -> None:
    post(bridge, impressions(1))

    later = post(bridge, impressions(1, time=1668106790992 + 600_000))

    assert later.body["duplicates"] == 1
    assert len(up.fullstory_events()) == 1


def test_given_a_new_treatment_for_the_same_user_and_flag_then_it_is_sent(up: FakeUpstream, bridge: Instance) -> None:
    post(bridge, impressions(1, treatment="on"))

    switched = post(bridge, impressions(1, treatment="off"))

    assert switched.body["delivered"] == 1
    assert [e["properties"]["impression"]["treatment"] for e in up.fullstory_events()] == ["on", "off"]


def test_given_the_dedup_window_has_passed_then_the_same_treatment_is_sent_again(
    up: FakeUpstream, make_instance: Any
) -> None:
    bridge = make_instance(
        FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_IMPRESSION_DEDUP_SECONDS="0.2"
    )
    post(bridge, impressions(1))
    time.sleep(0.3)

    again = post(bridge, impressions(1, time=1668106790992 + 60_000))

    assert again.body["delivered"] == 1
    assert len(up.fullstory_events()) == 2


def test_given_two_requests_with_the_same_impressions_at_once_then_each_is_sent_once_and_both_get_200(
    up: FakeUpstream, bridge: Instance
) -> None:
    # FME retries after 300 ms while the first attempt may still be running: the retry waits for it.
    up.latency = 0.3
    responses: list[Response] = []
    threads = [threading.Thread(target=lambda: responses.append(post(bridge, impressions(4)))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status for r in responses] == [200, 200]
    assert sent_uids(up) == [f"customer-{n}" for n in range(4)]


# --- FullStory failures ----------------------------------------------------------------------------------------


@pytest.fixture
def impatient(up: FakeUpstream, make_instance: Any) -> Instance:
    """A one-second retry budget and one sender, so outages fail fast and in a known order."""
    return make_instance(
        FULLSTORY_API_KEY=FS_KEY,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="1",
        FS2SPLIT_READ_TIMEOUT_SECONDS="0.5",
        FS2SPLIT_IMPRESSIONS_CONCURRENCY="1",
    )


def test_given_fullstory_is_down_then_no_200_and_nothing_is_remembered(up: FakeUpstream, impatient: Instance) -> None:
    up.script("POST", EVENTS, *[Fault(status=503)] * 50)

    response = post(impatient, impressions(3))

    assert (response.status, response.body["reason"]) == (503, "fullstory_unavailable")
    assert response.body["delivered"] == 0
    assert up.fullstory_events() == []
    up.reset()  # FullStory is back: the unused faults are dropped
    assert post(impatient, impressions(3)).body["delivered"] == 3


def test_given_fullstory_fails_midway_then_fmes_retry_sends_only_what_was_not_delivered(
    up: FakeUpstream, impatient: Instance
) -> None:
    up.script("POST", EVENTS, Fault(), Fault(), *[Fault(status=500)] * 20)
    first = post(impatient, impressions(6))
    assert (first.status, first.body["delivered"], first.body["not_delivered"]) == (503, 2, 4)

    stored = up.fullstory_events()
    up.reset()  # the outage ends
    retry = post(impatient, impressions(6))

    assert (retry.status, retry.body["delivered"], retry.body["duplicates"]) == (200, 4, 2)
    uids = [event["user"]["uid"] for event in stored + up.fullstory_events()]
    assert sorted(uids) == [f"customer-{n}" for n in range(6)]  # each exactly once


def test_given_fullstory_unreachable_then_503_without_waiting_past_the_budget(make_instance: Any) -> None:
    with FakeUpstream() as gone:
        url = gone.fullstory_url  # the port is closed once the server stops
    bridge = make_instance(FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=url, FS2SPLIT_RETRY_BUDGET_SECONDS="1")

    started = time.monotonic()
    response = post(bridge, impressions(20))

    assert (response.status, response.body["reason"]) == (503, "fullstory_unavailable")
    assert time.monotonic() - started < 3


def test_given_fullstory_hangs_then_the_worker_threads_keep_to_the_requests_time_budget(
    up: FakeUpstream, make_instance: Any
) -> None:
    # The deadline is a context variable: workers that did not inherit it would wait the full read timeout.
    up.script("POST", EVENTS, *[Fault(delay=4)] * 20)
    bridge = make_instance(
        FULLSTORY_API_KEY=FS_KEY,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="1",
        FS2SPLIT_READ_TIMEOUT_SECONDS="5",
    )

    started = time.monotonic()
    response = post(bridge, impressions(4))

    assert response.status == 503
    assert time.monotonic() - started < 2.5


def test_given_fullstory_rate_limits_beyond_the_budget_then_503_passes_on_its_retry_after(
    up: FakeUpstream, impatient: Instance
) -> None:
    up.script("POST", EVENTS, *[Fault(status=429, headers={"Retry-After": "30"})] * 5)

    response = post(impatient, impressions(5))

    assert (response.status, response.body["reason"]) == (503, "fullstory_unavailable")
    assert response.headers["Retry-After"] == "30"
    # After the first 429 the rest are not attempted: FullStory is not hammered while it sheds load.
    assert len(up.calls("POST", EVENTS)) == 1


def test_given_a_short_retry_after_then_it_is_waited_for_and_every_impression_delivered(
    up: FakeUpstream, bridge: Instance
) -> None:
    up.script("POST", EVENTS, Fault(status=429, headers={"Retry-After": "1"}))

    response = post(bridge, impressions(3))

    assert (response.status, response.body["delivered"]) == (200, 3)
    assert len(up.fullstory_events()) == 3


def test_given_fullstory_refuses_the_key_then_502_fullstory_rejected(up: FakeUpstream, impatient: Instance) -> None:
    up.script("POST", EVENTS, *[Fault(status=401, body={"code": "unauthorized", "message": "bad key"})] * 5)

    response = post(impatient, impressions(3))

    assert (response.status, response.body["reason"]) == (502, "fullstory_rejected")
    assert "bad key" in response.body["message"]


def test_given_fullstory_calls_one_event_invalid_then_it_is_counted_logged_and_the_rest_get_200(
    up: FakeUpstream, bridge: Instance, logged: list[str]
) -> None:
    up.script("POST", EVENTS, Fault(status=400, body={"code": "invalid_argument", "message": "uid too long"}))

    response = post(bridge, impressions(5))

    assert (response.status, response.body["delivered"], response.body["undeliverable"]) == (200, 4, 1)
    assert any("uid too long" in line for line in logged)


# --- refused ---------------------------------------------------------------------------------------------------


def test_given_an_fme_key_but_no_fullstory_api_key_then_503_and_nothing_is_acknowledged(
    up: FakeUpstream, make_instance: Any
) -> None:
    bridge = make_instance(SPLIT_API_KEY="fme-sdk-key", FULLSTORY_API_URL=up.fullstory_url)

    response = post(bridge, impressions(2))

    assert (response.status, response.body["reason"]) == (503, "fullstory_key_missing")
    assert up.requests == []


@pytest.mark.parametrize(
    ("given", "status", "reason"),
    [
        (TOKEN, 200, "delivered"),
        (None, 401, "token_invalid"),
        ("wrong", 401, "token_invalid"),
        ("tökén\ud800", 401, "token_invalid"),
    ],
    ids=["right", "missing", "wrong", "non-ascii"],
)
def test_given_an_impressions_token_then_only_a_request_carrying_it_is_served(
    up: FakeUpstream, make_instance: Any, given: str | None, status: int, reason: str
) -> None:
    bridge = make_instance(FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url, SPLIT_IMPRESSIONS_TOKEN=TOKEN)

    response = post(bridge, impressions(1), token=given)

    assert (response.status, response.body["reason"]) == (status, reason)
    assert TOKEN not in json.dumps(response.body)


def test_given_the_token_secret_cannot_be_read_then_503_secret_unavailable(make_instance: Any) -> None:
    def unreadable(reference: str) -> str:
        raise SecretUnavailable(reference, "permission denied")

    env = {"FULLSTORY_API_KEY": FS_KEY, "SPLIT_IMPRESSIONS_TOKEN_SECRET": "projects/p/secrets/token/versions/1"}
    bridge = dataclasses.replace(make_instance(**env), keys=Keys(env, fetch=unreadable, legacy_dir=None))

    response = post(bridge, impressions(1), token=TOKEN)

    assert (response.status, response.body["reason"]) == (503, "secret_unavailable")


def test_given_a_body_over_the_limit_then_413(make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY=FS_KEY, FS2SPLIT_IMPRESSIONS_MAX_BODY_BYTES="2048")

    response = post(bridge, impressions(20))

    assert (response.status, response.body["reason"]) == (413, "payload_too_large")


def test_given_a_gzip_bomb_then_413_without_ever_inflating_it(make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY=FS_KEY, FS2SPLIT_IMPRESSIONS_MAX_INFLATED_BYTES=str(1024 * 1024))
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"0" * (1024 * 1024)
    bomb = b"".join(squeezer.compress(zeros) for _ in range(64)) + squeezer.flush()  # 64 KB that inflate to 64 MB

    tracemalloc.start()
    try:
        response = post(bridge, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert (response.status, response.body["reason"]) == (413, "payload_too_large")
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (gzip.compress(b"[]")[:-6], "invalid_json"),  # truncated gzip
        (b"\x1f\x8b\x08\x00garbage", "invalid_json"),  # gzip magic, then nonsense
        (gzip.compress(b"not json"), "invalid_json"),
        (gzip.compress(b"[]") + b"trailing", "invalid_json"),
        (b"\xff\xfe\xfa", "invalid_json"),  # not UTF-8
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),  # nesting deeper than the parser's stack
        (b"[" + b"9" * 5000 + b"]", "invalid_json"),  # an integer longer than Python will parse
        (b'{"key": "customer-1"}', "not_a_webhook"),
        (b'"[]"', "not_a_webhook"),
    ],
    ids=["truncated", "garbage", "gzip-not-json", "trailing", "bad-utf8", "deep", "huge-integer", "object", "string"],
)
def test_given_a_malformed_body_then_400_and_nothing_is_sent(
    up: FakeUpstream, bridge: Instance, body: bytes, reason: str
) -> None:
    response = post(bridge, body)

    assert (response.status, response.body["reason"]) == (400, reason)
    assert up.requests == []


def test_given_dry_run_then_200_shows_the_events_and_nothing_is_sent(up: FakeUpstream, make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_DRY_RUN="true")

    response = post(bridge, event_bytes("split-impressions-webhook.json"))

    assert (response.status, response.body["reason"]) == (200, "dry_run")
    assert response.body["events"][0]["user"] == {"uid": "customer-123"}
    assert up.requests == []


def test_given_invalid_settings_then_503_settings_invalid(make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY=FS_KEY, FS2SPLIT_IMPRESSIONS_CONCURRENCY="zero")

    response = post(bridge, impressions(1))

    assert (response.status, response.body["reason"]) == (503, "settings_invalid")


def test_given_a_failing_fullstory_then_no_key_or_token_reaches_a_log_line_or_response(
    up: FakeUpstream, make_instance: Any, logged: list[str]
) -> None:
    bridge = make_instance(
        FULLSTORY_API_KEY=FS_KEY,
        FULLSTORY_API_URL=up.fullstory_url,
        SPLIT_IMPRESSIONS_TOKEN=TOKEN,
        FS2SPLIT_RETRY_BUDGET_SECONDS="1",
    )
    up.script("POST", EVENTS, Fault(status=400), *[Fault(status=403)] * 5)

    bodies = [post(bridge, impressions(3), token=TOKEN).body, post(bridge, impressions(3), token="wrong").body]

    seen = "\n".join(logged) + json.dumps(bodies)
    assert "403" in seen  # the failures were logged
    assert FS_KEY not in seen
    assert TOKEN not in seen


_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_items = st.fixed_dictionaries(
    {},
    optional={
        name: _scalars | st.lists(_scalars, max_size=3)
        for name in ("key", "split", "treatment", "time", "label", "bucketingKey", "splitVersionNumber", "sdk")
    },
)
_bodies = (
    st.binary(max_size=200)
    | st.lists(_items | _scalars, max_size=5).map(lambda items: json.dumps(items).encode())
    | st.lists(_items, max_size=5).map(lambda items: gzip.compress(json.dumps(items).encode()))
    | st.binary(max_size=100).map(lambda tail: gzip.compress(b"[]")[:12] + tail)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
@example(body=rb'[{"key": "k", "split": "f", "treatment": "on", "label": "\ud800"}]')  # a lone surrogate
def test_given_any_body_then_the_route_answers_below_500_with_a_serialisable_response(
    make_instance: Any, body: bytes
) -> None:
    # Dry run: every parse and build path runs, and nothing needs a FullStory to answer.
    instance = make_instance(FULLSTORY_API_KEY=FS_KEY, FS2SPLIT_DRY_RUN="true")

    response = post(instance, body)

    assert response.status < 500, response.body
    response.body_bytes()  # what the adapters send: must encode (no lone surrogates from hostile JSON)


# --- through the platforms' entry points -----------------------------------------------------------------------


def test_given_functions_framework_when_fme_posts_gzip_with_the_token_then_200_and_fullstory_has_it(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions_framework

    import fs2split.instance

    monkeypatch.setenv("FULLSTORY_API_KEY", FS_KEY)
    monkeypatch.setenv("FULLSTORY_API_URL", up.fullstory_url)
    monkeypatch.setenv("SPLIT_IMPRESSIONS_TOKEN", TOKEN)
    fs2split.instance.reset()
    client = functions_framework.create_app("fs2split", "main.py").test_client()

    answer = client.post(
        f"{PATH}?token={TOKEN}",
        data=io.BytesIO(gzip.compress(event_bytes("split-impressions-webhook.json"))),
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 200
    assert answer.get_json()["delivered"] == 1
    assert sent_uids(up) == ["customer-123"]


def test_given_a_lambda_function_url_with_a_base64_gzip_body_then_200_and_fullstory_has_it(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fs2split.instance
    from main import lambda_handler

    monkeypatch.setenv("FULLSTORY_API_KEY", FS_KEY)
    monkeypatch.setenv("FULLSTORY_API_URL", up.fullstory_url)
    monkeypatch.setenv("SPLIT_IMPRESSIONS_TOKEN", TOKEN)
    fs2split.instance.reset()
    event = copy.deepcopy(event_json("lambda-function-url.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = PATH
    event["rawQueryString"] = f"token={TOKEN}"
    event["body"] = base64.b64encode(gzip.compress(event_bytes("split-impressions-webhook.json"))).decode()
    event["isBase64Encoded"] = True

    answer = lambda_handler(event, None)

    assert answer["statusCode"] == 200
    assert sent_uids(up) == ["customer-123"]
