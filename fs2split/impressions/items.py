"""The impressions webhook's JSON array, parsed one element at a time under a cap on their number.

``json.loads`` of the whole body builds every element before anything can be counted: a 65 KB gzip of
``[{},{},…]`` (22 million objects, inside the 64 MiB inflate cap) took 1.75 GB. Here the array is read
element by element: past ``max_items`` the body is refused, and an element that is not an object is
counted (as ``None``) rather than kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
# Each impression is one object, with perhaps an attributes object or a list inside: more than this many
# containers per allowed item cannot be impressions. An upper bound (a brace inside a string counts too),
# checked before any parsing, so one huge element cannot hold millions of objects either.
_CONTAINERS_PER_ITEM = 16


class Kind(StrEnum):
    TOO_MANY = "too_many"  # 413
    NOT_JSON = "not_json"  # 400 invalid_json
    NOT_AN_ARRAY = "not_an_array"  # 400 not_a_webhook


@dataclass(frozen=True)
class Refusal:
    kind: Kind
    message: str


_NOT_JSON = Refusal(Kind.NOT_JSON, "the body is not valid JSON (or gzip of it)")


def parse_items(body: bytes | bytearray, max_items: int) -> list[Any] | Refusal:
    """The array's elements (objects as dicts, anything else as None), or why there are none."""
    containers = body.count(b"{") + body.count(b"[")
    if containers > max_items * _CONTAINERS_PER_ITEM + 1:
        return Refusal(Kind.TOO_MANY, f"the body holds more JSON objects than {max_items} impressions can")
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return _NOT_JSON
    try:
        return _elements(text, max_items)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON and oversized integers; RecursionError, absurdly deep nesting.
        return _NOT_JSON


def _elements(text: str, max_items: int) -> list[Any] | Refusal:
    at = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    if text.startswith("\ufeff", at):
        raise ValueError("a BOM is not JSON")
    if not text.startswith("[", at):
        _DECODER.decode(text)  # raises on bad JSON: 400 invalid_json before 400 not_a_webhook
        return Refusal(Kind.NOT_AN_ARRAY, "expected a JSON array of impressions (FME's impressions webhook)")
    at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
    items: list[Any] = []
    if text.startswith("]", at):
        return _end(text, at + 1, items)
    while True:
        value, at = _DECODER.raw_decode(text, at)
        if len(items) >= max_items:
            return Refusal(Kind.TOO_MANY, f"more than {max_items} impressions in one body")
        items.append(value if isinstance(value, dict) else None)
        at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
        if text.startswith(",", at):
            at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
            continue
        if text.startswith("]", at):
            return _end(text, at + 1, items)
        raise ValueError("expected , or ]")


def _end(text: str, at: int, items: list[Any]) -> list[Any]:
    if _SPACE.match(text, at).end() != len(text):  # type: ignore[union-attr]
        raise ValueError("extra data after the array")
    return items
