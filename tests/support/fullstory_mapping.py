"""A small evaluator of FullStory's Advanced JSON Mapping, to turn a template into the body a
Stream would send: ``["var", "path"]``, ``concat``, ``list``, ``toUnixTimestamp`` and the
``as*`` conversions, as FullStory documents them. Plain JSON passes through unchanged.

What FullStory gives for a missing variable is unconfirmed: here it is null, the cautious reading
(fs2split must then treat the field as absent, never as a value).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any


def evaluate(template: Any, context: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        return {key: evaluate(value, context) for key, value in template.items()}
    if isinstance(template, list) and template and isinstance(template[0], str) and template[0] in _FUNCTIONS:
        return _FUNCTIONS[template[0]]([evaluate(arg, context) for arg in template[1:]], context, template[1:])
    if isinstance(template, list):
        return [evaluate(item, context) for item in template]
    return template


def _var(_args: list[Any], context: dict[str, Any], raw: list[Any]) -> Any:
    node: Any = context
    for segment in str(raw[0]).split("."):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return None
    return node


def _as_string(value: Any) -> str:
    return (
        ""
        if value is None
        else value
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_bool(value: Any) -> bool:
    return value.strip().lower() == "true" if isinstance(value, str) else bool(value)


def _to_unix(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    return int(datetime.fromisoformat(value).timestamp())


def _each(convert: Callable[[Any], Any]) -> Callable[[list[Any], dict[str, Any], list[Any]], Any]:
    return lambda args, _context, _raw: [convert(item) for item in (args[0] or [])]


def _one(convert: Callable[[Any], Any]) -> Callable[[list[Any], dict[str, Any], list[Any]], Any]:
    return lambda args, _context, _raw: convert(args[0])


_FUNCTIONS: dict[str, Callable[[list[Any], dict[str, Any], list[Any]], Any]] = {
    "var": _var,
    "concat": lambda args, _context, _raw: "".join(_as_string(arg) for arg in args),
    "list": lambda args, _context, _raw: list(args),
    "toUnixTimestamp": _one(_to_unix),
    "asString": _one(_as_string),
    "asStrings": _each(_as_string),
    "asNumber": _one(_as_number),
    "asNumbers": _each(_as_number),
    "asBool": _one(_as_bool),
    "asBools": _each(_as_bool),
}
