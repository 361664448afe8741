"""The portable request and response every adapter converts to and from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """One HTTP request, independent of Flask or Lambda.

    ``headers`` keys are lower-cased by the adapters; ``query`` keeps the first value of each
    parameter; ``body`` is the raw bytes as received (signatures are checked on these).
    """

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def body_bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()

    def all_headers(self) -> dict[str, str]:
        return {"content-type": "application/json", "cache-control": "no-store", **self.headers}
