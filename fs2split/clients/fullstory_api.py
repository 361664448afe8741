"""FullStory's REST API: the user lookup (FullStory → FME) and server events (FME → FullStory)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from fs2split.clients.statuses import Verdict
from fs2split.clients.upstream import Reply, Upstream, encode_json

# Derives an Idempotency-Key from the exact bytes of a request body.
KeyOfBody = Callable[[bytes], str]


class Lookup(StrEnum):
    FOUND = "found"
    ANONYMOUS = "anonymous"  # the user exists but was never identified: no uid
    NOT_FOUND = "not_found"
    REJECTED = "rejected"  # FullStory refused our request (key, permissions): retrying won't help
    UNAVAILABLE = "unavailable"  # rate limited, down, or unreachable after retries


@dataclass(frozen=True)
class UserLookup:
    result: Lookup
    uid: str | None = None
    reply: Reply | None = None


class FullStoryApi:
    def __init__(self, upstream: Upstream, base_url: str, api_key: str) -> None:
        self._upstream = upstream
        self._base_url = base_url.rstrip("/")
        # FullStory wants the key verbatim after "Basic", not base64 of anything.
        self._headers = {"Authorization": f"Basic {api_key}", "Accept": "application/json"}

    def get_user(self, user_id: str) -> UserLookup:
        reply = self._upstream.request(
            "GET", f"{self._base_url}/v2/users/{quote(user_id, safe='')}", headers=self._headers
        )
        if reply.ok:
            if not _is_user(reply.data):
                # An HTML page or truncated JSON with a 200 (a proxy, a gateway): not "no uid". Answered as
                # unavailable, so the sender retries, and never cached as anonymous.
                malformed = Reply(0, error=f"FullStory answered HTTP {reply.status} without a user document")
                return UserLookup(Lookup.UNAVAILABLE, None, malformed)
            uid = reply.data.get("uid")
            if isinstance(uid, str) and uid.strip():
                return UserLookup(Lookup.FOUND, uid, reply)
            return UserLookup(Lookup.ANONYMOUS, None, reply)
        if reply.status == 404:
            return UserLookup(Lookup.NOT_FOUND, None, reply)
        if reply.verdict is Verdict.RETRY_LATER:
            return UserLookup(Lookup.UNAVAILABLE, None, reply)
        return UserLookup(Lookup.REJECTED, None, reply)

    def create_event(self, event: dict[str, Any], idempotency_key: KeyOfBody | None = None) -> Reply:
        body = encode_json(event)
        headers = dict(self._headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key(body)
        # With an idempotency key FullStory stores the event once, so it may be sent again after a read timeout.
        return self._upstream.request(
            "POST",
            f"{self._base_url}/v2/events",
            headers=headers,
            data=body,
            repeatable=idempotency_key is not None,
        )


def _is_user(data: Any) -> bool:
    # FullStory may answer with the user's new id once identified, so only its presence is checked.
    user_id = data.get("id") if isinstance(data, dict) else None
    return isinstance(user_id, str) and bool(user_id.strip())
