"""The whole handler (the Lambda entry point, the adapter, the router, both routes, the clients) under hostile
bodies, headers and upstream answers: always a JSON answer, never a 500 (issue 13).

Header values reach Latin-1 (a superscript digit in a signature's ``t:`` part passes ``isdigit()``), and the
bodies include the flat Streams payload (issue 14), whose own reader parses times and user ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import main
from fs2split import instance as instance_module
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream, Fault

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

HUGE_INT = 10**400
surrogates = st.sampled_from(["\ud800", "\udfff", "\udc80x"])
hostile_text = st.one_of(st.text(max_size=40), surrogates, st.sampled_from(["", " ", "\x00", "é" * 300]))
numbers = st.one_of(st.integers(), st.floats(), st.just(HUGE_INT), st.just(-HUGE_INT), st.sampled_from([1e308, -0.0]))
scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(hostile_text, c, max_size=3), max_leaves=12
)
session_urls = st.one_of(st.just("https://app.fullstory.com/ui/TN1/session/100:1"), hostile_text)


def mostly(valid: Any, hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually the valid value, so most examples get as far as the upstreams; sometimes a hostile one."""
    return st.one_of(st.just(valid), st.just(valid), hostile)


def _json(document: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \\ud800 escapes, which is what a hostile sender can put in JSON.
    return json.dumps(document, ensure_ascii=True, allow_nan=True).encode()


def _webhook(name: Any, properties: Any, timestamp: Any, url: Any) -> bytes:
    document = event_json("fullstory-custom-event.json")
    document["data"].update(name=name, properties=properties, timestamp=timestamp, sessionUrl=url)
    return _json(document)


def _streams(name: Any, timestamp: Any, uid: Any) -> bytes:
    document = event_json("fullstory-streams-event.json")
    document.update(name=name, timestamp=timestamp)
    if isinstance(document.get("user"), dict):
        document["user"]["uid"] = uid
    return _json(document)


def _flat_stream(event_type: Any, event_time: Any, user_id: Any) -> bytes:
    document = json.loads((EXAMPLES / "fullstory-stream-flat.json").read_text())
    document.update(event_type=event_type, event_time=event_time, user_id=user_id)
    return _json(document)


def _impressions(items: Any) -> bytes:
    return _json(items)


base_impression = event_json("split-impressions-webhook.json")[0]
impression_items = st.lists(
    st.one_of(
        values,
        st.fixed_dictionaries({k: mostly(v, scalars) for k, v in base_impression.items()}),
        st.fixed_dictionaries({k: mostly(v, scalars) for k, v in base_impression.items()}),
    ),
    max_size=4,
)
bodies = st.one_of(
    st.tuples(
        st.just("/fullstory"),
        st.builds(
            _webhook,
            mostly("Checkout", hostile_text),
            mostly({}, st.dictionaries(hostile_text, values, max_size=4)),
            mostly("2024-05-01T10:00:00Z", values),
            mostly("https://app.fullstory.com/ui/TN1/session/100:1", session_urls),
        ),
    ),
    st.tuples(
        st.just("/fullstory"),
        st.builds(_streams, mostly("Checkout", hostile_text), mostly(1714557600000, values), mostly("u-1", values)),
    ),
    st.tuples(
        st.just("/fullstory"),
        st.builds(
            _flat_stream,
            mostly("Checkout", hostile_text),
            mostly("2024-05-01T10:00:00Z", values),
            mostly("customer-1", values),
        ),
    ),
    st.tuples(st.just("/split/impressions"), st.builds(_impressions, impression_items)),
    st.tuples(st.sampled_from(["/fullstory", "/split/impressions"]), st.binary(max_size=200)),
)
latin1 = st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f")
header_values = st.text(alphabet=latin1, max_size=60)
headers = st.dictionaries(
    st.sampled_from(["fullstory-signature", "content-type", "content-encoding", "x-anything"]), header_values
)
retry_afters = st.one_of(
    st.none(),
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-5", "0", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "99999999"]),
)
upstream_bodies = st.one_of(
    st.none(),
    st.builds(lambda m: {"message": m}, hostile_text),
    st.text(max_size=80),
    st.just("<html>"),
    st.just('{"id": "100", "uid": '),
    st.builds(lambda v: _json(v), values),
)
answers = st.lists(
    st.builds(
        lambda status, body, wait, reset: Fault(
            status=status, body=body, headers={"Retry-After": wait} if wait else {}, reset=reset
        ),
        st.sampled_from([0, 200, 202, 204, 301, 400, 401, 403, 404, 408, 409, 413, 425, 429, 500, 502, 503, 599]),
        upstream_bodies,
        retry_afters,
        st.booleans(),
    ),
    max_size=3,
)


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_user("100", "customer-0")
        yield server


@pytest.fixture(params=["unsigned", "signed"])
def env(request: pytest.FixtureRequest, up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_env = {
        "SPLIT_API_KEY": "sdk-key-hostile",
        "FULLSTORY_API_KEY": "fs-key-hostile",
        "SPLIT_EVENTS_URL": up.split_events_url,
        "FULLSTORY_API_URL": up.fullstory_url,
        "FS2SPLIT_RETRY_BUDGET_SECONDS": "0.5",
        "FS2SPLIT_READ_TIMEOUT_SECONDS": "0.3",
        "FS2SPLIT_RETRY_BACKOFF_SECONDS": "0.01",
    }
    if request.param == "signed":
        settings_env["FULLSTORY_WEBHOOK_SECRET"] = "hook-secret-hostile"
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    instance_module.reset()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, sent_headers=headers, fme=answers, users=answers, fs_events=answers)
def test_hostile_bodies_headers_and_upstream_answers_always_get_a_json_answer_never_a_500(
    up: FakeUpstream,
    env: None,
    body: tuple[str, bytes],
    sent_headers: dict[str, str],
    fme: Any,
    users: Any,
    fs_events: Any,
) -> None:
    path, raw = body
    up.reset()
    up.script("POST", "/api/events/bulk", *fme)
    up.script("GET", "/v2/users/", *users)
    up.script("POST", "/v2/events", *fs_events)
    instance_module.current().dedup = type(instance_module.current().dedup)(ttl_s=0, max_size=1)  # every body anew
    event = {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {"http": {"method": "POST"}},
        "headers": sent_headers,
        "body": raw.decode("latin-1"),
    }

    answer = main.lambda_handler(event, None)

    assert answer["statusCode"] != 500, answer["body"]
    document = json.loads(answer["body"])
    assert isinstance(document["reason"], str)
    assert isinstance(document["message"], str)
    retry_after = answer["headers"].get("Retry-After")
    assert retry_after is None or 1 <= int(retry_after) <= 3600


@pytest.fixture(scope="module")
def cloud_functions() -> Any:
    from pathlib import Path

    from functions_framework import create_app

    return create_app("fs2split", str(Path(__file__).resolve().parent.parent / "main.py")).test_client()


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, sent_headers=headers, fme=answers, users=answers, fs_events=answers)
def test_the_same_hostility_through_cloud_functions_never_gets_flasks_html_500(
    up: FakeUpstream,
    env: None,
    cloud_functions: Any,
    body: tuple[str, bytes],
    sent_headers: dict[str, str],
    fme: Any,
    users: Any,
    fs_events: Any,
) -> None:
    path, raw = body
    up.reset()
    up.script("POST", "/api/events/bulk", *fme)
    up.script("GET", "/v2/users/", *users)
    up.script("POST", "/v2/events", *fs_events)
    instance_module.current().dedup = type(instance_module.current().dedup)(ttl_s=0, max_size=1)

    response = cloud_functions.post(path, data=raw, headers=sent_headers)

    assert response.status_code != 500, response.get_data()[:300]
    document = json.loads(response.get_data())
    assert isinstance(document["reason"], str)
