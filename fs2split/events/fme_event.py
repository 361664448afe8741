"""Build the FME event for a FullStory event, and check it against FME's own rules."""

from __future__ import annotations

import math
import sys
from typing import Any

from fs2split.events.event_type import is_valid_event_type
from fs2split.events.properties import MAX_PROPERTIES, MAX_SIZE, Scalar, size_of

# Where the original integration looked for the event's value; kept in the properties too.
VALUE_PROPERTIES = ("split.value", "split.value_real", "split.value_int")
MAX_KEY_CHARS = 250
_DOUBLE_MAX = int(sys.float_info.max)


def finite_number(value: Any) -> int | float | None:
    """A number FME can store as its value (a double); anything else, including an integer beyond the double's
    range (which would make ``math.isfinite`` raise OverflowError), is None: the value is dropped."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return value if -_DOUBLE_MAX <= value <= _DOUBLE_MAX else None
    return value if math.isfinite(value) else None


def default_value(properties: dict[str, Scalar]) -> int | float | None:
    for name in VALUE_PROPERTIES:
        value = finite_number(properties.get(name))
        if value is not None:
            return value
    return None


def build(
    *,
    event_type: str,
    traffic_type: str,
    key: str,
    timestamp_ms: int,
    value: int | float | None,
    properties: dict[str, Scalar],
) -> dict[str, Any]:
    return {
        "eventTypeId": event_type,
        "trafficTypeName": traffic_type,
        "key": key,
        "timestamp": timestamp_ms,
        "value": value,
        "properties": properties,
    }


def problem(event: dict[str, Any]) -> str | None:
    """Why FME would refuse this event, or None. Mirrors the official SDKs' input validation."""
    if not is_valid_event_type(event["eventTypeId"]):
        return f"event type {event['eventTypeId'][:90]!r} does not match FME's pattern"
    key = event["key"]
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
        return f"the key must be a non-empty string of at most {MAX_KEY_CHARS} characters"
    traffic_type = event["trafficTypeName"]
    if not traffic_type or traffic_type != traffic_type.lower():
        return "the traffic type must be a non-empty lower-case string"
    if event["value"] is not None and finite_number(event["value"]) is None:
        return "the value must be a finite number"
    properties = event["properties"]
    if len(properties) > MAX_PROPERTIES or size_of(properties) > MAX_SIZE:
        return "the properties exceed FME's limits"
    return None
