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

    def resolve(self, api: FullStoryApi, user_id: str) -> tuple[UserLookup, bool]:
        """The lookup result and whether it came from the cache."""
        with self._lock:
            uid = self._found.get(user_id)
            absent = self._absent.get(user_id)
        if uid is not None:
            return UserLookup(Lookup.FOUND, uid), True
        if absent is not None:
            return UserLookup(absent), True
        lookup = api.get_user(user_id)
        with self._lock:
            if lookup.result is Lookup.FOUND and lookup.uid:
                self._found[user_id] = lookup.uid
            elif lookup.result in (Lookup.ANONYMOUS, Lookup.NOT_FOUND):
                self._absent[user_id] = lookup.result
        return lookup, False
