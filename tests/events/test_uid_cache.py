"""The uid cache: later events of a user cost no lookup, within a TTL and a bounded size."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import responses

from fs2split.clients.fullstory_api import FullStoryApi, Lookup
from fs2split.clients.upstream import Upstream
from fs2split.events.identity import UidResolver

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
