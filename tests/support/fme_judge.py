"""The real splitio_client SDK judges whether FME would accept an event fs2split sends.

The SDK's input validator is what every official SDK applies before ``track``; events that
pass it are the ones FME's events API takes.
"""

from __future__ import annotations

import logging
from typing import Any

from splitio.client import input_validator

# The validator logs its verdicts; tests read them from the assertion message instead.
logging.getLogger("splitio").setLevel(logging.CRITICAL)


def fme_refusal(event: dict[str, Any]) -> str | None:
    """None when the SDK would send ``event`` as is; otherwise why not."""
    expected = {"eventTypeId", "trafficTypeName", "key", "timestamp", "value", "properties"}
    if set(event) != expected:
        return f"fields {sorted(event)} differ from {sorted(expected)}"
    if input_validator.validate_event_type(event["eventTypeId"]) != event["eventTypeId"]:
        return f"event type {event['eventTypeId']!r} refused"
    if input_validator.validate_track_key(event["key"]) != event["key"] or not isinstance(event["key"], str):
        return f"key {event['key']!r} refused"
    if input_validator.validate_traffic_type(event["trafficTypeName"], False, None) != event["trafficTypeName"]:
        return f"traffic type {event['trafficTypeName']!r} refused or not lower-case"
    if input_validator.validate_value(event["value"]) is False:
        return f"value {event['value']!r} refused"
    if not isinstance(event["timestamp"], int) or isinstance(event["timestamp"], bool) or event["timestamp"] <= 0:
        return f"timestamp {event['timestamp']!r} is not positive integer milliseconds"
    ok, valid, _size = input_validator.valid_properties(event["properties"], "track")
    if not ok:
        return "properties refused (size)"
    if (valid or {}) != event["properties"]:
        return "properties would be altered (a value of an invalid type)"
    if len(event["properties"]) > 300:
        return "more than 300 properties: FME would trim them"
    return None


def assert_fme_accepts(event: dict[str, Any]) -> None:
    refusal = fme_refusal(event)
    assert refusal is None, f"FME would refuse {event!r}: {refusal}"
