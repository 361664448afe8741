"""Read a FullStory Stream's body, which the customer builds with Field Mapping.

Two readers, both ending in a `StreamEvent`:

- the flat "Customizable Payload" with FullStory's own field names (``event_type``, ``event_time``,
  ``user_id``, …): every other top-level field is a property, except the personal fields in
  ``WITHHELD``, which go to FME only when the mapping's ``properties.include`` names them;
- any other shape, through the mapping's ``streams`` section: dot paths to the name, time, uid and
  the object holding the properties.

In a Stream, ``user_id`` is the uid the app gave ``FS('setIdentity')``: the FME key as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_NAME_CHARS = 250  # FullStory's own limit on event names
WITHHELD = ("user_email", "user_display_name", "ip_address")
_FLAT_USED = ("event_type", "event_time", "user_id")
_SECONDS_BELOW = 10**11  # toUnixTimestamp gives seconds; milliseconds pass 10^11 in 1973
_ABSENT = object()


@dataclass(frozen=True)
class StreamPaths:
    """The mapping's ``streams`` section: where in any body the event's parts are."""

    name: str
    timestamp: str
    uid: str
    properties: str | None = None


@dataclass(frozen=True)
class StreamEvent:
    name: str
    timestamp_ms: int | None  # None: the body has no event time
    uid: str | None
    properties: dict[str, Any]
    withheld: dict[str, Any] = field(default_factory=dict)


def is_flat(document: dict[str, Any]) -> bool:
    return "event_type" in document


def read_flat(document: dict[str, Any]) -> StreamEvent | str:
    """The event, or a one-line reason the body is refused."""
    name = _name(document.get("event_type"), "event_type")
    if not isinstance(name, tuple):
        return name
    timestamp = _time(document.get("event_time"), "event_time")
    if isinstance(timestamp, str):
        return timestamp
    skipped = (*_FLAT_USED, *WITHHELD)
    return StreamEvent(
        name=name[0],
        timestamp_ms=timestamp[0],
        uid=_uid(document.get("user_id")),
        properties={k: v for k, v in document.items() if k not in skipped},
        withheld={k: document[k] for k in WITHHELD if k in document},
    )


def read_mapped(document: dict[str, Any], paths: StreamPaths) -> StreamEvent | str:
    """The event read through the mapping's ``streams`` paths, or a one-line reason it is refused."""
    name = _name(find(document, paths.name), paths.name)
    if not isinstance(name, tuple):
        return name
    timestamp = _time(find(document, paths.timestamp), paths.timestamp)
    if isinstance(timestamp, str):
        return timestamp
    properties: Any = {}
    if paths.properties is not None:
        properties = find(document, paths.properties)
        if properties is _ABSENT or properties is None:
            properties = {}
        elif not isinstance(properties, dict):
            return f"{paths.properties} (the mapping's streams.properties) must be an object"
    return StreamEvent(name[0], timestamp[0], _uid(find(document, paths.uid)), dict(properties))


def find(document: Any, path: str) -> Any:
    """The value at a dot path (a number indexes a list, as in ``event.0.event_time``), else _ABSENT."""
    node = document
    for segment in path.split("."):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isascii() and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return _ABSENT
    return node


def event_time_ms(value: Any) -> int | None:
    """ISO 8601, or epoch seconds (below 10^11) or milliseconds; None when it is not a date."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _is_epoch_text(value.strip()):
        value = float(value)
    if isinstance(value, int | float):
        # math.isfinite() of an int beyond float range raises OverflowError; such an int is no date anyway.
        if isinstance(value, float) and not math.isfinite(value):
            return None
        milliseconds = value * 1000 if abs(value) < _SECONDS_BELOW else value
        return _plausible(round(milliseconds))
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # FullStory sends UTC
    return _plausible(round(moment.timestamp() * 1000))


def _is_epoch_text(text: str) -> bool:
    """ASCII digits with at most one decimal point, as ``asString`` of ``toUnixTimestamp`` would give."""
    whole, _, fraction = text.partition(".")
    return 0 < len(whole) <= 16 and (whole + fraction).isascii() and (whole + fraction).isdigit()


def _plausible(value: int) -> int | None:
    return value if 0 < value < 10**14 else None


def _name(value: Any, where: str) -> tuple[str] | str:
    if not isinstance(value, str) or not value.strip():
        return f"{where} must be a non-empty string (the FullStory event name)"
    if len(value) > MAX_NAME_CHARS:
        return f"{where} is longer than {MAX_NAME_CHARS} characters"
    return (value,)


def _time(value: Any, where: str) -> tuple[int | None] | str:
    # A mapping whose variable is missing may give null or "" (unconfirmed which): both mean "no time".
    if value is _ABSENT or value is None or value == "":
        return (None,)
    parsed = event_time_ms(value)
    if parsed is None:
        return f"{where} is not a date (ISO 8601, or epoch seconds or milliseconds)"
    return (parsed,)


def _uid(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or value is _ABSENT:
        return None
    if isinstance(value, int):
        value = str(value)
    # As it is: the app's own id. Blank is no id, never a key.
    return value if isinstance(value, str) and value.strip() else None
