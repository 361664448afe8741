"""FullStory properties → FME's flat property map, within FME's limits.

Nested objects are flattened with dot paths and keys are kept as FullStory sent them, type
suffix included, exactly as the original bridge named them (``colors.rainbow_strs``). Arrays
become JSON strings. FME takes only strings, numbers, booleans and null, at most 300
properties, and at most 32,768 "bytes" as the strictest official SDK counts them.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_PROPERTIES = 300
MAX_SIZE = 32_768
_BASE_SIZE = 1024  # both SDKs start every event at 1 KiB
_MAX_DEPTH = 32

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Flattened:
    properties: dict[str, Scalar]
    trimmed: tuple[str, ...]  # names left out to fit FME's limits, or unrepresentable


def flatten(properties: dict[str, Any]) -> Flattened:
    """Flatten and trim, keeping properties in FullStory's order while they fit."""
    kept: dict[str, Scalar] = {}
    trimmed: list[str] = []
    size = _BASE_SIZE
    for name, value in _walk(properties, "", 0):
        if value is _UNREPRESENTABLE:
            trimmed.append(name)
            continue
        cost = property_size(name, value)
        if len(kept) >= MAX_PROPERTIES or size + cost > MAX_SIZE:
            trimmed.append(name)
            continue
        kept[name] = value
        size += cost
    return Flattened(kept, tuple(trimmed))


def property_size(name: str, value: Scalar) -> int:
    """The larger of the two SDKs' counts for one property.

    Python: length of key and string value in characters. JavaScript: 2 bytes per character of
    key and string, 8 per number, 4 per boolean.
    """
    if isinstance(value, bool):
        js = 4
    elif isinstance(value, int | float):
        js = 8
    elif isinstance(value, str):
        js = 2 * len(value)
    else:
        js = 0
    python = len(value) if isinstance(value, str) else 0
    return max(len(name) + python, 2 * len(name) + js)


def size_of(properties: dict[str, Scalar]) -> int:
    return _BASE_SIZE + sum(property_size(k, v) for k, v in properties.items())


class _Unrepresentable:
    pass


_UNREPRESENTABLE: Any = _Unrepresentable()
_DOUBLE_MAX = int(sys.float_info.max)


def _walk(value: dict[str, Any], prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            if depth >= _MAX_DEPTH:
                yield name, _UNREPRESENTABLE
            else:
                yield from _walk(item, f"{name}.", depth + 1)
        else:
            yield name, _scalar(item)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        # Beyond a double's range no JSON reader on FME's side keeps it: trimmed like inf, not sent.
        return value if -_DOUBLE_MAX <= value <= _DOUBLE_MAX else _UNREPRESENTABLE
    if isinstance(value, float):
        return value if math.isfinite(value) else _UNREPRESENTABLE
    if isinstance(value, dict):
        return "{}"  # an empty object: nothing to flatten, keep that it was there
    if isinstance(value, list):
        try:
            # Compact, as JavaScript's JSON.stringify wrote it in the original bridge.
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (ValueError, RecursionError):
            return _UNREPRESENTABLE
    return _UNREPRESENTABLE
