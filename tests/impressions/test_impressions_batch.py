"""Impressions at volume: above ``FS2SPLIT_IMPRESSIONS_BATCH_THRESHOLD`` new impressions, one webhook becomes
FullStory batch import jobs (``POST /v2/events/batch``, at most 50,000 requests each) against the loopback
FullStory, which records every call. 200 means every job was accepted; a job that could not be created is
503 with nothing remembered, so FME's retry sends it all again under the same ``Idempotency-Key``."""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from fs2split.logs import LOGGER_NAME
from tests.conftest import event_bytes, event_json
from tests.support.upstream import FakeUpstream, Fault

PATH = "/split/impressions"
EVENTS = "/v2/events"
BATCH = "/v2/events/batch"
FS_KEY = "fs-key-0123456789"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def bridge(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url)


@pytest.fixture
def impatient(up: FakeUpstream, make_instance: Any) -> Instance:
    """A one-second budget: an outage ends the request quickly."""
    return make_instance(
        FULLSTORY_API_KEY=FS_KEY,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="1",
        FS2SPLIT_READ_TIMEOUT_SECONDS="0.5",
    )


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """The fields of every line the fs2split logger writes during the test."""
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append({"message": record.getMessage(), **getattr(record, "fields", {})})

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def impressions(count: int, start: int = 0) -> list[dict[str, Any]]:
    base = event_json("split-impressions-webhook.json")[0]
    return [{**base, "key": f"customer-{n}", "time": base["time"] + n} for n in range(start, start + count)]


def post(instance: Instance, items: list[dict[str, Any]], *, gzipped: bool = False) -> Response:
    raw = json.dumps(items).encode()
    return handle(Request("POST", PATH, {}, {}, gzip.compress(raw) if gzipped else raw), instance)


def singles(up: FakeUpstream) -> list[Any]:
    """Calls to ``POST /v2/events`` (single creates), not to the batch endpoint below it."""
    return [call for call in up.calls("POST", EVENTS) if call.path == EVENTS]


def uids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(event["user"]["uid"] for event in events)


# --- the threshold ---------------------------------------------------------------------------------------------


def test_given_as_many_impressions_as_the_threshold_then_each_is_a_single_create_and_no_job_is_made(
    up: FakeUpstream, bridge: Instance
) -> None:
    response = post(bridge, impressions(100))

    assert (response.status, response.body["delivered"]) == (200, 100)
    assert len(singles(up)) == 100
    assert up.calls("POST", BATCH) == []
    assert "jobs" not in response.body


def test_given_one_more_than_the_threshold_then_one_job_holds_them_all_and_no_single_create_is_made(
    up: FakeUpstream, bridge: Instance
) -> None:
    response = post(bridge, impressions(101))

    assert (response.status, response.body["reason"], response.body["delivered"]) == (200, "delivered", 101)
    assert [c.path for c in up.calls()] == [BATCH]
    [(job_id, requests)] = up.fullstory_jobs().items()
    assert response.body["jobs"] == [{"id": job_id, "impressions": 101}]
    assert uids(requests) == sorted(item["key"] for item in impressions(101))


def test_given_a_job_then_each_request_is_the_event_a_single_create_would_send(
    up: FakeUpstream, bridge: Instance, make_instance: Any
) -> None:
    post(bridge, impressions(150))
    [batched] = up.fullstory_jobs().values()
    up.reset()
    one_by_one = make_instance(
        FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_IMPRESSIONS_BATCH_THRESHOLD="1000"
    )

    post(one_by_one, impressions(150))

    one_each = [call.json() for call in singles(up)]
    key = lambda event: event["user"]["uid"]  # noqa: E731
    assert sorted(batched, key=key) == sorted(one_each, key=key)
    assert all(e["session"] == {"use_most_recent": True} and e["name"] == "split_evaluation" for e in batched)


def test_given_a_lower_threshold_setting_then_a_small_webhook_becomes_a_job(
    up: FakeUpstream, make_instance: Any
) -> None:
    small = make_instance(
        FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_IMPRESSIONS_BATCH_THRESHOLD="5"
    )

    assert post(small, impressions(6)).body["delivered"] == 6
    assert [c.path for c in up.calls()] == [BATCH]


def test_given_most_impressions_were_already_written_then_the_few_new_ones_go_as_single_creates(
    up: FakeUpstream, bridge: Instance
) -> None:
    post(bridge, impressions(150))
    up.reset()

    response = post(bridge, impressions(150) + impressions(20, start=150))

    assert (response.body["delivered"], response.body["duplicates"]) == (20, 150)
    assert len(singles(up)) == 20
    assert up.calls("POST", BATCH) == []


def test_given_a_written_job_when_fme_sends_the_same_webhook_again_then_200_duplicate_and_no_call(
    up: FakeUpstream, bridge: Instance
) -> None:
    post(bridge, impressions(300))
    calls = len(up.calls())

    again = post(bridge, impressions(300))

    assert (again.status, again.body["reason"], again.body["duplicates"]) == (200, "duplicate", 300)
    assert len(up.calls()) == calls


# --- the split at 50,000 -------------------------------------------------------------------------------------


def test_given_50001_impressions_gzipped_then_two_jobs_hold_each_impression_exactly_once(
    up: FakeUpstream, bridge: Instance
) -> None:
    items = impressions(50_001)

    response = post(bridge, items, gzipped=True)

    assert (response.status, response.body["delivered"]) == (200, 50_001)
    jobs = up.fullstory_jobs()
    assert sorted(len(requests) for requests in jobs.values()) == [1, 50_000]
    assert sorted(j["impressions"] for j in response.body["jobs"]) == [1, 50_000]
    assert {j["id"] for j in response.body["jobs"]} == set(jobs)
    written = [event["user"]["uid"] for requests in jobs.values() for event in requests]
    assert sorted(written) == sorted(item["key"] for item in items)
    assert len(up.calls()) == 2


# --- failures --------------------------------------------------------------------------------------------------


def test_given_a_job_refused_with_429_then_accepted_then_200_and_one_job_under_one_idempotency_key(
    up: FakeUpstream, bridge: Instance
) -> None:
    up.script("POST", BATCH, Fault(status=429, headers={"Retry-After": "1"}))

    response = post(bridge, impressions(200))

    assert (response.status, response.body["delivered"]) == (200, 200)
    first, second = up.calls("POST", BATCH)
    assert (first.status, second.status) == (429, 200)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body
    assert len(up.fullstory_jobs()) == 1


def test_given_a_job_creation_that_never_succeeds_then_503_and_fmes_retry_sends_it_all_again(
    up: FakeUpstream, impatient: Instance
) -> None:
    up.script("POST", BATCH, *[Fault(status=503)] * 50)

    failed = post(impatient, impressions(200))

    assert (failed.status, failed.body["reason"]) == (503, "fullstory_unavailable")
    assert (failed.body["delivered"], failed.body["not_delivered"]) == (0, 200)
    assert up.fullstory_jobs() == {}
    tried = up.calls("POST", BATCH)
    up.reset()  # FullStory is back

    retried = post(impatient, impressions(200))

    assert (retried.status, retried.body["delivered"]) == (200, 200)
    [accepted] = up.calls("POST", BATCH)
    assert accepted.headers["idempotency-key"] == tried[0].headers["idempotency-key"]
    assert len(next(iter(up.fullstory_jobs().values()))) == 200


def test_given_a_job_accepted_but_answered_too_late_then_the_retry_makes_no_second_job(
    up: FakeUpstream, make_instance: Any
) -> None:
    patient = make_instance(
        FULLSTORY_API_KEY=FS_KEY,
        FULLSTORY_API_URL=up.fullstory_url,
        FS2SPLIT_RETRY_BUDGET_SECONDS="4",
        FS2SPLIT_READ_TIMEOUT_SECONDS="0.5",
    )
    up.script("POST", BATCH, Fault(status=200, delay=1.0))  # stored, but the answer misses the read timeout

    response = post(patient, impressions(200))

    assert (response.status, response.body["delivered"]) == (200, 200)
    assert len(up.calls("POST", BATCH)) == 2
    assert len(up.fullstory_jobs()) == 1
    assert len(up.fullstory_events()) == 200


def test_given_a_different_retry_content_then_a_new_key_and_a_second_job(up: FakeUpstream, impatient: Instance) -> None:
    # At least once: a webhook whose content differs cannot be recognised as the same job.
    up.script("POST", BATCH, Fault(status=200, body={"job": {}}))  # a job made, but an answer without its id

    first = post(impatient, impressions(200))
    retry = post(impatient, impressions(201))

    assert (first.status, retry.status) == (503, 200)
    keys = {call.headers["idempotency-key"] for call in up.calls("POST", BATCH)}
    assert len(keys) == 2
    assert len(up.fullstory_jobs()) == 2


def test_given_a_200_without_a_job_id_then_503_and_the_retry_finds_the_job_fullstory_made(
    up: FakeUpstream, impatient: Instance
) -> None:
    # FullStory stored the job both times; only its answers were malformed.
    up.script("POST", BATCH, Fault(status=200, body={"job": {"id": ""}}), Fault(status=200, body="<html>"))

    first, second = post(impatient, impressions(200)), post(impatient, impressions(200))

    assert [(r.status, r.body["reason"], r.body["delivered"]) for r in (first, second)] == [
        (503, "fullstory_unavailable", 0)
    ] * 2
    assert "<html>" not in json.dumps(second.body)
    third = post(impatient, impressions(200))
    assert (third.status, third.body["delivered"]) == (200, 200)
    assert len(up.fullstory_jobs()) == 1  # the same body, the same Idempotency-Key: FullStory's cached job


def test_given_a_job_refused_with_400_then_its_impressions_go_one_by_one_and_only_the_bad_one_is_lost(
    up: FakeUpstream, bridge: Instance
) -> None:
    up.script("POST", BATCH, Fault(status=400, body={"code": "invalid_argument", "message": "requests[7] invalid"}))
    up.script("POST", EVENTS, Fault(), Fault(), Fault(), Fault(), Fault(), Fault(), Fault(), Fault(status=400))

    response = post(bridge, impressions(150))

    assert (response.status, response.body["reason"]) == (200, "delivered")
    assert (response.body["delivered"], response.body["undeliverable"]) == (149, 1)
    assert len(singles(up)) == 150
    assert up.fullstory_jobs() == {}
    assert "jobs" not in response.body


def test_given_fullstory_refuses_the_key_for_a_job_then_502_and_nothing_is_remembered(
    up: FakeUpstream, bridge: Instance
) -> None:
    up.script("POST", BATCH, Fault(status=403))

    response = post(bridge, impressions(150))

    assert (response.status, response.body["reason"]) == (502, "fullstory_rejected")
    assert singles(up) == []
    assert post(bridge, impressions(150)).body["delivered"] == 150


def test_given_jobs_then_the_log_line_names_their_ids_and_sizes(
    up: FakeUpstream, bridge: Instance, logged: list[dict[str, Any]]
) -> None:
    response = post(bridge, impressions(120))

    [line] = [fields for fields in logged if "fullstory_jobs" in fields]
    assert (
        line["fullstory_jobs"] == response.body["jobs"] == [{"id": next(iter(up.fullstory_jobs())), "impressions": 120}]
    )
    assert FS_KEY not in json.dumps(logged)


# --- through the platforms' entry points -----------------------------------------------------------------------


def test_given_functions_framework_when_fme_posts_a_large_gzip_webhook_then_200_with_one_job(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions_framework

    import fs2split.instance

    monkeypatch.setenv("FULLSTORY_API_KEY", FS_KEY)
    monkeypatch.setenv("FULLSTORY_API_URL", up.fullstory_url)
    fs2split.instance.reset()
    client = functions_framework.create_app("fs2split", "main.py").test_client()

    answer = client.post(PATH, data=io.BytesIO(gzip.compress(json.dumps(impressions(500)).encode())))

    assert answer.status_code == 200
    assert [job["impressions"] for job in answer.get_json()["jobs"]] == [500]
    assert [c.path for c in up.calls()] == [BATCH]


def test_given_a_lambda_function_url_with_a_large_webhook_then_200_with_one_job(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fs2split.instance
    from main import lambda_handler

    monkeypatch.setenv("FULLSTORY_API_KEY", FS_KEY)
    monkeypatch.setenv("FULLSTORY_API_URL", up.fullstory_url)
    fs2split.instance.reset()
    event = copy.deepcopy(event_json("lambda-function-url.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = PATH
    event["rawQueryString"] = ""
    event["body"] = base64.b64encode(gzip.compress(json.dumps(impressions(500)).encode())).decode()
    event["isBase64Encoded"] = True

    answer = lambda_handler(event, None)

    assert answer["statusCode"] == 200
    assert [job["impressions"] for job in json.loads(answer["body"])["jobs"]] == [500]
    assert len(next(iter(up.fullstory_jobs().values()))) == 500


def test_the_fixture_is_below_the_threshold_and_still_a_single_create(up: FakeUpstream, bridge: Instance) -> None:
    response = handle(Request("POST", PATH, {}, {}, event_bytes("split-impressions-webhook.json")), bridge)

    assert response.status == 200
    assert [c.path for c in up.calls()] == [EVENTS]
