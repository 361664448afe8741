"""The uid cache: later events of a user cost no lookup, within a TTL and a bounded size."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import responses

from fs2split.app import handle
from fs2split.clients.fullstory_api import FullStoryApi, Lookup
from fs2split.clients.upstream import Upstream
from fs2split.events.identity import UidResolver
from fs2split.http_types import Request
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream, Fault

USERS = "https://api.fullstory.com/v2/users/"


@pytest.fixture
def api() -> Iterator[tuple[FullStoryApi, responses.RequestsMock]]:
    upstream = Upstream()
    with responses.RequestsMock() as mock:
        yield FullStoryApi(upstream, "https://api.fullstory.com", "key"), mock
    upstream.close()


def lookups(mock: responses.RequestsMock) -> list[str]:
    return [call.request.url.rsplit("/", 1)[-1] for call in mock.calls]


def test_a_resolved_uid_is_reused_until_its_ttl_expires(api: tuple[FullStoryApi, responses.RequestsMock]) -> None:
    client, mock = api
    mock.get(USERS + "1", json={"id": "1", "uid": "u1"})
    resolver = UidResolver(ttl_s=0.2, max_size=10)

    first, cached_first = resolver.resolve(client, "1")
    second, cached_second = resolver.resolve(client, "1")
    time.sleep(0.25)
    resolver.resolve(client, "1")

    assert (first.uid, second.uid, cached_first, cached_second) == ("u1", "u1", False, True)
    assert lookups(mock) == ["1", "1"]


def test_the_cache_holds_at_most_its_size(api: tuple[FullStoryApi, responses.RequestsMock]) -> None:
    client, mock = api
    for n in range(3):
        mock.get(USERS + str(n), json={"id": "1", "uid": f"u{n}"})
    resolver = UidResolver(ttl_s=60, max_size=2)

    for user in ("0", "1", "2", "0"):
        resolver.resolve(client, user)

    assert lookups(mock) == ["0", "1", "2", "0"]  # "0" was evicted to make room for "2"


def test_anonymous_users_are_remembered_too_but_failures_are_not(
    api: tuple[FullStoryApi, responses.RequestsMock],
) -> None:
    client, mock = api
    mock.get(USERS + "anon", json={"id": "anon"})
    mock.get(USERS + "down", status=401, json={"message": "bad key"})
    resolver = UidResolver(ttl_s=60, max_size=10)

    results = [resolver.resolve(client, user)[0].result for user in ("anon", "anon", "down", "down")]

    assert results == [Lookup.ANONYMOUS, Lookup.ANONYMOUS, Lookup.REJECTED, Lookup.REJECTED]
    assert lookups(mock) == ["anon", "down", "down"]


def test_user_ids_are_escaped_in_the_lookup_path(api: tuple[FullStoryApi, responses.RequestsMock]) -> None:
    client, mock = api
    mock.get(USERS + "a%2Fb%3F", json={"id": "1", "uid": "u"})

    assert client.get_user("a/b?").uid == "u"


def test_concurrent_first_events_of_one_user_make_one_lookup(make_instance: Any) -> None:
    with FakeUpstream() as up:
        up.add_user("100", "customer-0")
        up.script("GET", "/v2/users/", Fault(delay=0.3))  # slow enough for every request to arrive meanwhile
        bridge = make_instance(FULLSTORY_API_KEY="fs-key", FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_DRY_RUN="true")
        document = event_json("fullstory-custom-event.json")
        document["data"]["sessionUrl"] = "https://app.fullstory.com/ui/TN1/session/100:1"
        bodies = [json.dumps({**document, "id": f"event-{n}"}).encode() for n in range(20)]
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda body: handle(Request("POST", "/fullstory", {}, {}, body), bridge), bodies))

        assert [answer.body["events"][0]["key"] for answer in answers] == ["customer-0"] * 20
        assert len(up.calls("GET", "/v2/users/")) == 1
