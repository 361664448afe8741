"""Who the user is: the FullStory ``uid`` (the key the app also gives FME).

A v1 webhook carries only ``sessionUrl``; the FullStory user id in it is resolved to the uid
with ``GET /v2/users/{id}``, cached per instance with a TTL and a bounded size.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote

from cachetools import TTLCache

from fs2split.clients.fullstory_api import FullStoryApi, Lookup, UserLookup
from fs2split.clients.upstream import Reply
from fs2split.deadline import remaining

# .../ui/<org>/session/<userId>:<sessionId>[!<digits>], the colon possibly %3A-encoded, any host
# (app.fullstory.com, app.eu1.fullstory.com). The newer /client-session/<uuid> form, which
# carries no user id, does not match: it is treated as "no user id" (unconfirmed format).
_SESSION_URL = re.compile(r"/session/(?P<user>[^/:?#%]+)(?::|%3[Aa])(?P<session>[^/?#!]+)")
# Anonymous users are cached for less time: they may identify themselves soon.
_NEGATIVE_TTL_CAP_S = 300.0


def user_id_from_session_url(session_url: str | None) -> str | None:
    if not session_url:
        return None
    match = _SESSION_URL.search(session_url)
    if match is None:
        return None
    return unquote(match.group("user")).strip() or None


class UidResolver:
    """FullStory user id → uid, with positive and negative results cached separately."""

    def __init__(self, *, ttl_s: float, max_size: int) -> None:
        self._found: TTLCache[str, str] = TTLCache(maxsize=max_size, ttl=max(ttl_s, 0.001))
        self._absent: TTLCache[str, Lookup] = TTLCache(
            maxsize=max_size, ttl=max(min(ttl_s, _NEGATIVE_TTL_CAP_S), 0.001)
        )
        self._lock = threading.Lock()
        # Single flight: a user's first events often arrive together; one lookup serves them all.
        self._in_flight: dict[str, _Flight] = {}

    def resolve(self, api: FullStoryApi, user_id: str) -> tuple[UserLookup, bool]:
        """The lookup result and whether it came from the cache (or another request's lookup)."""
        with self._lock:
            uid = self._found.get(user_id)
            absent = self._absent.get(user_id)
            flight = self._in_flight.get(user_id)
            leader = flight is None and uid is None and absent is None
            if leader:
                flight = self._in_flight[user_id] = _Flight()
        if uid is not None:
            return UserLookup(Lookup.FOUND, uid), True
        if absent is not None:
            return UserLookup(absent), True
        assert flight is not None
        if not leader:
            return flight.wait(), True
        lookup = UserLookup(Lookup.UNAVAILABLE)
        try:
            lookup = api.get_user(user_id)
        finally:
            with self._lock:
                if lookup.result is Lookup.FOUND and lookup.uid:
                    self._found[user_id] = lookup.uid
                elif lookup.result in (Lookup.ANONYMOUS, Lookup.NOT_FOUND):
                    self._absent[user_id] = lookup.result
                del self._in_flight[user_id]
            flight.finish(lookup)
        return lookup, False


class _Flight:
    """One lookup in progress; followers wait for its result within their own time budget."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result = UserLookup(Lookup.UNAVAILABLE)

    def finish(self, lookup: UserLookup) -> None:
        self._result = lookup
        self._done.set()

    def wait(self) -> UserLookup:
        left = remaining()
        if not self._done.wait(None if left is None else max(0.0, left)):
            late = Reply(0, error="the lookup of this user by another request did not finish within the budget")
            return UserLookup(Lookup.UNAVAILABLE, None, late)
        return self._result
