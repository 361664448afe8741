"""Parse what FullStory POSTs: the v1 webhook (``recording.event.custom``, ``test``, others), the
older fixed Streams (v2) body with a ``user`` block, and today's Streams (read by `streams`), whose
body the customer builds. Every event carries a fingerprint of its parsed JSON for deduplication."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fs2split.outcome import Outcome, Reason

if TYPE_CHECKING:
    from fs2split.events import streams

CUSTOM_EVENT = "recording.event.custom"
TEST_EVENT = "test"
MAX_NAME_CHARS = 250  # FullStory's own limit on event names


class Kind(StrEnum):
    CUSTOM = "custom"  # v1 recording.event.custom
    STREAMS = "streams"  # v2 Streams body with a user block
    STREAM = "stream"  # a Stream built with Field Mapping: its uid is the FME key, no lookup


@dataclass(frozen=True)
class FullStoryEvent:
    kind: Kind
    name: str
    properties: dict[str, Any]
    timestamp_ms: int
    session_url: str | None = None
    uid: str | None = None  # Streams: the app's own id for the user
    user_id: str | None = None  # Streams: FullStory's id for the user
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Personal fields of a flat Stream, sent only when the mapping names them explicitly.
    withheld: dict[str, Any] = field(default_factory=dict)
    # False when the body has no event time: identical bodies are then repeats, not redeliveries.
    timed: bool = True
    fingerprint: str = ""  # sha256 of the body's JSON, whitespace and key order aside


ARRIVAL_NOTE = "no event time in the body: used the arrival time"


def parse(body: bytes, paths: streams.StreamPaths | None = None) -> FullStoryEvent | Outcome:
    """A custom event to deliver, or the outcome for anything else (test, ignored, malformed).

    ``paths``: the mapping's ``streams`` section; when given, every body that is not a v1 webhook
    is read through it."""
    document = _load_json(body)
    if isinstance(document, Outcome):
        return document
    if not isinstance(document, dict):
        return _invalid("the body is JSON but not an object")
    parsed = _parse_document(document, paths)
    if isinstance(parsed, Outcome):
        return parsed
    try:
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:  # parsed a little less deep in the stack than it is written back
        return Outcome(Reason.INVALID_JSON, "the body is nested too deeply")
    # surrogatepass: a JSON \ud800 escape is a lone surrogate, which plain UTF-8 refuses to encode.
    return replace(parsed, fingerprint=hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest())


def _parse_document(document: dict[str, Any], paths: streams.StreamPaths | None) -> FullStoryEvent | Outcome:
    if "eventName" in document:
        return _parse_v1(document)
    # Only now: a function that receives v1 webhooks alone never loads the Streams readers.
    from fs2split.events import streams

    if paths is not None:
        return _stream_event(streams.read_mapped(document, paths))
    if streams.is_flat(document):
        return _stream_event(streams.read_flat(document))
    if document.get("api_version") == "v2" or isinstance(document.get("user"), dict):
        return _parse_streams(document)
    return _invalid(
        "neither a FullStory webhook (no eventName) nor a Stream (no event_type); "
        "for another shape, name its fields in the mapping's streams section"
    )


def _stream_event(read: streams.StreamEvent | str) -> FullStoryEvent | Outcome:
    if isinstance(read, str):
        return _invalid(read)
    timed = read.timestamp_ms is not None
    return FullStoryEvent(
        Kind.STREAM,
        read.name,
        read.properties,
        read.timestamp_ms if read.timestamp_ms is not None else int(time.time() * 1000),
        uid=read.uid,
        notes=() if timed else (ARRIVAL_NOTE,),
        withheld=read.withheld,
        timed=timed,
    )


def _load_json(body: bytes) -> Any:
    if not body.strip():
        return Outcome(Reason.INVALID_JSON, "the body is empty")
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        return Outcome(Reason.INVALID_JSON, "the body is not UTF-8")
    except (ValueError, RecursionError) as error:
        return Outcome(Reason.INVALID_JSON, f"the body is not valid JSON: {str(error)[:120]}")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_v1(document: dict[str, Any]) -> FullStoryEvent | Outcome:
    event_name = document.get("eventName")
    if not isinstance(event_name, str):
        return _invalid("eventName must be a string")
    if event_name == TEST_EVENT:
        return Outcome(Reason.TEST_EVENT, "FullStory test event received; nothing to send")
    if event_name != CUSTOM_EVENT:
        return Outcome(Reason.IGNORED, f"webhook type {event_name[:80]!r} is not a custom event; ignored")
    data = document.get("data")
    if not isinstance(data, dict):
        return _invalid("data must be an object")
    common = _name_properties_timestamp(data, "data.")
    if isinstance(common, Outcome):
        return common
    name, properties, timestamp_ms, notes = common
    session_url = data.get("sessionUrl")
    if session_url is not None and not isinstance(session_url, str):
        return _invalid("data.sessionUrl must be a string")
    return FullStoryEvent(
        Kind.CUSTOM, name, properties, timestamp_ms, session_url=session_url, notes=notes, timed=not notes
    )


def _parse_streams(document: dict[str, Any]) -> FullStoryEvent | Outcome:
    common = _name_properties_timestamp(document, "")
    if isinstance(common, Outcome):
        return common
    name, properties, timestamp_ms, notes = common
    user = document.get("user")
    if not isinstance(user, dict):
        return _invalid("user must be an object")
    return FullStoryEvent(
        Kind.STREAMS,
        name,
        properties,
        timestamp_ms,
        uid=_id_string(user.get("uid")),
        user_id=_id_string(user.get("id")),
        notes=notes,
        timed=not notes,
    )


def _name_properties_timestamp(
    data: dict[str, Any], prefix: str
) -> tuple[str, dict[str, Any], int, tuple[str, ...]] | Outcome:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return _invalid(f"{prefix}name must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        return _invalid(f"{prefix}name is longer than {MAX_NAME_CHARS} characters")
    properties = data.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return _invalid(f"{prefix}properties must be an object")
    raw_timestamp = data.get("timestamp")
    notes: tuple[str, ...] = ()
    if raw_timestamp is None:
        timestamp_ms = int(time.time() * 1000)
        notes = (ARRIVAL_NOTE,)
    else:
        parsed = _timestamp_ms(raw_timestamp)
        if parsed is None:
            return _invalid(f"{prefix}timestamp must be ISO-8601 or epoch milliseconds")
        timestamp_ms = parsed
    return name, properties, timestamp_ms, notes


def _timestamp_ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _plausible_ms(value)  # math.isfinite() of an int beyond float range raises OverflowError
    if isinstance(value, float):
        return _plausible_ms(int(value)) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # FullStory sends UTC; an offset-less stamp is read as UTC
    return _plausible_ms(round(moment.timestamp() * 1000))


def _plausible_ms(value: int) -> int | None:
    # After 1970 and before year 5138: anything else is a unit mistake, not an event time.
    return value if 0 < value < 10**14 else None


def _id_string(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    return value.strip() or None if isinstance(value, str) else None


def _invalid(message: str) -> Outcome:
    return Outcome(Reason.NOT_A_WEBHOOK, message)
