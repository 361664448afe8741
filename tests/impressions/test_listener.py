"""``FullStoryImpressionListener``: the FME Python SDK listener. The SDK calls it in the evaluating thread
for every evaluation, so it must enqueue and return, never raise, and keep its queue bounded. Its data is
shaped here as the SDK shapes it (``splitio``'s own ``Impression`` namedtuple); the real SDK drives it in
``test_listener_splitio_sdk.py``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from splitio.models.impressions import Impression

from fs2split.impressions.listener import AsyncFullStoryImpressionListener, FullStoryImpressionListener
from fs2split.logs import LOGGER_NAME
from tests.support.upstream import FakeUpstream, Fault

FS_KEY = "fs-listener-key-42"
EVENTS = "/v2/events"


def evaluation(
    key: str = "customer-1",
    flag: str = "new_checkout",
    treatment: str = "on",
    change_number: int = 1667920819383,
    attributes: dict[str, Any] | None = None,
    time_ms: int = 1668106790992,
) -> dict[str, Any]:
    """``data`` exactly as splitio 10.7's ImpressionListenerWrapper builds it."""
    impression = Impression(key, flag, treatment, "default rule", change_number, None, time_ms, None, None)
    return {
        "impression": impression,
        "attributes": attributes,
        "sdk-language-version": "python-10.7.0",
        "instance-id": "host-1",
    }


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def listeners() -> Iterator[list[FullStoryImpressionListener]]:
    """Listeners a test builds, closed at its end whatever happens."""
    built: list[FullStoryImpressionListener] = []
    yield built
    for listener in built:
        listener.close(timeout_s=0)


@pytest.fixture
def listener(up: FakeUpstream, listeners: list[FullStoryImpressionListener]) -> FullStoryImpressionListener:
    built = FullStoryImpressionListener(FS_KEY, up.fullstory_url, env={})
    listeners.append(built)
    return built


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Each line the fs2split logger writes during the test."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


# --- configuration ---------------------------------------------------------------------------------------------


@responses.activate
def test_given_no_arguments_then_it_reads_the_key_and_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, listeners: list[FullStoryImpressionListener]
) -> None:
    monkeypatch.setenv("FULLSTORY_API_KEY", FS_KEY)
    monkeypatch.setenv("FULLSTORY_API_URL", "https://api.eu1.fullstory.com")
    sent = responses.post("https://api.eu1.fullstory.com/v2/events", json={})
    listener = FullStoryImpressionListener()
    listeners.append(listener)

    listener.log_impression(evaluation())

    assert listener.flush(5)
    [call] = sent.calls
    assert call.request.headers["Authorization"] == f"Basic {FS_KEY}"
    assert call.request.headers["Idempotency-Key"].startswith("fs2split-imp-")


@responses.activate
def test_given_keyword_arguments_then_they_override_the_environment(
    monkeypatch: pytest.MonkeyPatch, listeners: list[FullStoryImpressionListener]
) -> None:
    monkeypatch.setenv("FULLSTORY_API_KEY", "from-env")
    monkeypatch.setenv("FULLSTORY_API_URL", "https://api.eu1.fullstory.com")
    sent = responses.post("https://fs.example.test/v2/events", json={})
    listener = FullStoryImpressionListener(api_key=FS_KEY, api_url="https://fs.example.test/")
    listeners.append(listener)

    listener.log_impression(evaluation())

    assert listener.flush(5)
    assert [c.request.headers["Authorization"] for c in sent.calls] == [f"Basic {FS_KEY}"]


def test_given_an_unusable_url_then_construction_fails_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="api_url"):
        FullStoryImpressionListener(FS_KEY, "ftp://fullstory", env={})


def test_given_no_api_key_then_nothing_is_sent_no_thread_starts_and_it_says_so(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener], logged: list[str]
) -> None:
    listener = FullStoryImpressionListener(api_url=up.fullstory_url, env={})
    listeners.append(listener)

    listener.log_impression(evaluation())

    assert listener.flush(1)
    assert listener.stats()["no_api_key"] == 1
    assert up.requests == []
    assert any("FULLSTORY_API_KEY is not set" in line for line in logged)


# --- what is sent ----------------------------------------------------------------------------------------------


def test_given_an_evaluation_then_fullstory_gets_one_split_evaluation_event_for_the_key(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener]
) -> None:
    listener = FullStoryImpressionListener(FS_KEY, up.fullstory_url, environment_name="Production", env={})
    listeners.append(listener)

    listener.log_impression(evaluation(attributes={"email": "ada@example.com"}))

    assert listener.flush(5)
    assert up.fullstory_events() == [
        {
            "name": "split_evaluation",
            "timestamp": "2022-11-10T18:59:50.992Z",
            "user": {"uid": "customer-1"},
            "session": {"use_most_recent": True},
            "properties": {
                "impression": {
                    "feature": "new_checkout",
                    "treatment": "on",
                    "keyName": "customer-1",
                    "label": "default rule",
                    "changeNumber": 1667920819383,
                    "time": 1668106790992,
                },
                "environmentName": "Production",
                "sdkLanguageVersion": "python-10.7.0",
            },
        }
    ]


def test_given_include_attributes_then_the_evaluation_attributes_are_sent_too(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener]
) -> None:
    listener = FullStoryImpressionListener(FS_KEY, up.fullstory_url, include_attributes=True, env={})
    listeners.append(listener)
    attributes = {"plan": "pro", "seats": 12}

    listener.log_impression(evaluation(attributes=attributes))
    attributes["plan"] = "changed after the evaluation"

    assert listener.flush(5)
    [event] = up.fullstory_events()
    assert event["properties"]["attributes"] == {"plan": "pro", "seats": 12}


def test_given_the_same_evaluation_hundreds_of_times_then_one_event_is_sent(
    up: FakeUpstream, listener: FullStoryImpressionListener
) -> None:
    for _ in range(500):
        listener.log_impression(evaluation())

    assert listener.flush(5)
    assert len(up.calls("POST", EVENTS)) == 1
    assert listener.stats()["duplicates"] == 499


def test_given_a_new_treatment_or_flag_version_then_another_event_is_sent(
    up: FakeUpstream, listener: FullStoryImpressionListener
) -> None:
    for data in (evaluation(), evaluation(treatment="off"), evaluation(change_number=2), evaluation()):
        listener.log_impression(data)

    assert listener.flush(5)
    sent = [
        (e["properties"]["impression"]["treatment"], e["properties"]["impression"]["changeNumber"])
        for e in up.fullstory_events()
    ]
    assert sorted(sent) == [("off", 1667920819383), ("on", 2), ("on", 1667920819383)]


def test_given_the_dedup_window_has_passed_then_the_same_evaluation_is_sent_again(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener]
) -> None:
    listener = FullStoryImpressionListener(FS_KEY, up.fullstory_url, dedup_seconds=0.2, env={})
    listeners.append(listener)
    listener.log_impression(evaluation())
    assert listener.flush(5)
    time.sleep(0.3)

    listener.log_impression(evaluation(time_ms=1668106790992 + 300))

    assert listener.flush(5)
    assert len(up.fullstory_events()) == 2


# --- never slow, never broken ----------------------------------------------------------------------------------


def test_given_a_hanging_fullstory_then_log_impression_returns_at_once(
    up: FakeUpstream, listener: FullStoryImpressionListener
) -> None:
    up.script("POST", EVENTS, *[Fault(delay=3)] * 10)

    started = time.perf_counter()
    for n in range(1000):
        listener.log_impression(evaluation(key=f"customer-{n}"))
    elapsed = time.perf_counter() - started

    assert elapsed < 1.0  # a sanity ceiling: ~15 µs each on a laptop, none waits for FullStory
    assert listener.stats()["queued"] == 1000
    up.stop()  # end the hang so the listener can close


def test_given_a_full_queue_then_the_oldest_are_dropped_and_counted(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener]
) -> None:
    up.script("POST", EVENTS, Fault(delay=0.5))  # the one worker is busy with the first impression
    listener = FullStoryImpressionListener(FS_KEY, up.fullstory_url, max_queue=5, workers=1, env={})
    listeners.append(listener)
    listener.log_impression(evaluation(key="customer-0"))
    assert up.wait_for(lambda: len(up.calls("POST", EVENTS)) == 1)

    for n in range(1, 21):
        listener.log_impression(evaluation(key=f"customer-{n}"))

    assert listener.stats()["queue"] == 5
    assert listener.dropped == 15
    assert listener.flush(5)
    assert sorted(e["user"]["uid"] for e in up.fullstory_events()) == sorted(
        ["customer-0", *(f"customer-{n}" for n in range(16, 21))]
    )


def test_given_a_dropped_impression_then_its_next_evaluation_is_queued_again(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener]
) -> None:
    up.script("POST", EVENTS, Fault(delay=0.3))
    listener = FullStoryImpressionListener(FS_KEY, up.fullstory_url, max_queue=1, workers=1, env={})
    listeners.append(listener)
    listener.log_impression(evaluation(key="busy"))
    assert up.wait_for(lambda: len(up.calls("POST", EVENTS)) == 1)
    listener.log_impression(evaluation(key="dropped"))
    listener.log_impression(evaluation(key="kept"))  # pushes "dropped" out

    listener.log_impression(evaluation(key="dropped"))  # not a duplicate: it was never sent

    assert listener.flush(5)
    assert sorted(e["user"]["uid"] for e in up.fullstory_events()) == ["busy", "dropped"]


@pytest.mark.parametrize(
    "data",
    [None, 42, "impression", {}, {"impression": None}, {"impression": object()}, {"impression": {"treatment": "on"}}],
    ids=["none", "int", "str", "empty", "no-impression", "object", "partial"],
)
def test_given_data_that_is_not_an_impression_then_log_impression_neither_raises_nor_sends(
    up: FakeUpstream, listener: FullStoryImpressionListener, data: Any
) -> None:
    listener.log_impression(data)

    assert listener.flush(1)
    assert listener.stats()["invalid"] == 1
    assert up.requests == []


def test_given_an_impression_whose_fields_raise_then_the_error_stays_inside_the_listener(
    listener: FullStoryImpressionListener,
) -> None:
    class Hostile:
        feature_name = "f"

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("boom")

    listener.log_impression({"impression": Hostile(), "sdk-language-version": "python-10.7.0"})

    assert listener.stats()["errors"] == 1


def test_given_a_brief_fullstory_error_then_the_impression_is_still_delivered(
    up: FakeUpstream, listener: FullStoryImpressionListener
) -> None:
    up.script("POST", EVENTS, Fault(status=503), Fault(reset=True))

    listener.log_impression(evaluation())

    assert listener.flush(5)
    assert listener.stats()["sent"] == 1
    assert len(up.fullstory_events()) == 1


def test_given_fullstory_refuses_the_key_then_it_pauses_and_logs_without_the_key(
    up: FakeUpstream, listener: FullStoryImpressionListener, logged: list[str]
) -> None:
    up.script("POST", EVENTS, *[Fault(status=401, body={"code": "unauthorized", "message": "bad key"})] * 10)
    listener.log_impression(evaluation(key="first"))
    assert up.wait_for(lambda: listener.stats()["rejected"] == 1)

    for n in range(5):
        listener.log_impression(evaluation(key=f"later-{n}"))
    time.sleep(0.3)

    assert len(up.calls("POST", EVENTS)) == 1  # paused: not one doomed request per evaluation
    assert any("bad key" in line for line in logged)
    assert all(FS_KEY not in line for line in logged)


def test_given_fullstory_calls_an_event_invalid_then_the_same_evaluation_is_not_sent_again(
    up: FakeUpstream, listener: FullStoryImpressionListener
) -> None:
    up.script("POST", EVENTS, Fault(status=400, body={"code": "invalid_argument", "message": "bad uid"}))
    listener.log_impression(evaluation())
    assert listener.flush(5)

    for _ in range(100):
        listener.log_impression(evaluation())

    assert listener.flush(5)
    assert len(up.calls("POST", EVENTS)) == 1
    assert listener.stats()["rejected"] == 1


# --- lifecycle -------------------------------------------------------------------------------------------------


def test_given_close_then_queued_impressions_are_sent_workers_stop_and_later_ones_are_ignored(
    up: FakeUpstream, listener: FullStoryImpressionListener
) -> None:
    for n in range(10):
        listener.log_impression(evaluation(key=f"customer-{n}"))

    listener.close()
    listener.log_impression(evaluation(key="after-close"))

    assert len(up.fullstory_events()) == 10
    assert not any(thread.is_alive() for thread in listener._threads)
    assert "after-close" not in json.dumps(up.fullstory_events())


def test_given_close_before_fullstory_answers_then_it_returns_within_its_timeout_and_counts_the_rest(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener]
) -> None:
    up.script("POST", EVENTS, *[Fault(delay=1)] * 20)
    listener = FullStoryImpressionListener(FS_KEY, up.fullstory_url, workers=1, env={})
    listeners.append(listener)
    for n in range(5):
        listener.log_impression(evaluation(key=f"customer-{n}"))

    started = time.monotonic()
    listener.close(timeout_s=0.2)

    assert time.monotonic() - started < 2.5
    assert listener.dropped >= 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_given_a_fork_after_threads_started_then_the_child_sends_with_its_own_threads(
    up: FakeUpstream, listener: FullStoryImpressionListener
) -> None:
    # gunicorn/uWSGI fork workers from a parent that may have built (and used) the listener already.
    listener.log_impression(evaluation(key="parent"))
    assert listener.flush(5)

    pid = os.fork()
    if pid == 0:  # the child: threads and locks of the parent are gone or unusable
        code = 1
        try:
            listener.log_impression(evaluation(key="child"))
            code = 0 if listener.flush(5) and listener.stats()["sent"] == 1 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(e["user"]["uid"] for e in up.fullstory_events()) == ["child", "parent"]


def test_given_the_asyncio_sdk_then_the_async_listener_is_awaited_and_sends(
    up: FakeUpstream, listeners: list[FullStoryImpressionListener]
) -> None:
    listener = AsyncFullStoryImpressionListener(FS_KEY, up.fullstory_url, env={})
    listeners.append(listener)

    async def evaluate() -> None:  # as splitio's ImpressionListenerWrapperAsync calls it
        for key in ("customer-1", "customer-2"):
            await listener.log_impression(evaluation(key=key))

    asyncio.run(evaluate())

    assert listener.flush(5)
    assert sorted(e["user"]["uid"] for e in up.fullstory_events()) == ["customer-1", "customer-2"]
