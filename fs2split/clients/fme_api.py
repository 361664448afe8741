"""Harness FME's events API: ``POST {SPLIT_EVENTS_URL}/events/bulk`` with a server-side SDK key."""

from __future__ import annotations

from typing import Any

from fs2split.clients.upstream import Reply, Upstream


class FmeApi:
    def __init__(self, upstream: Upstream, events_url: str, sdk_key: str) -> None:
        self._upstream = upstream
        self._url = f"{events_url.rstrip('/')}/events/bulk"
        self._headers = {"Authorization": f"Bearer {sdk_key}"}

    def send(self, events: list[dict[str, Any]]) -> Reply:
        """One request for all events: FME answers 202 when it accepted them (any 2xx counts)."""
        # Not repeatable after a read timeout: FME does not deduplicate, and may be storing them still.
        return self._upstream.request("POST", self._url, headers=self._headers, json_body=events, repeatable=False)
