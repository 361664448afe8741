"""FME impressions as FullStory ``split_evaluation`` server events.

One builder for the Python SDK listener and for the impressions webhook, with the property shape
the browser recipe sends (``examples/browser/split-evaluation-listener.js``), so a single FullStory
segment covers browser and server evaluations alike::

    {"impression": {"feature", "treatment", "keyName", "label", "changeNumber", "time", "bucketingKey"?},
     "environmentName"?, "sdkLanguageVersion"?}

Pure: no I/O. Evaluation attributes (often PII) are added only when a caller passes them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

EVENT_NAME = "split_evaluation"
# FullStory answers to one event that mean "not now" rather than "never": send it again later.
RETRY_LATER_STATUSES = frozenset({408, 409, 425})
# FME refuses keys longer than 250 characters, so a longer one cannot be a real impression.
MAX_KEY_CHARS = 250
# Flag names, treatments and labels are short in FME; anything this long is not an impression.
MAX_TEXT_CHARS = 1024
# datetime's range: 0001-01-01 .. 9999-12-31, in milliseconds since the epoch.
_MIN_MS = -62_135_596_800_000
_MAX_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Attribute values sent to FullStory: enough for a segment, bounded against runaway payloads.
_MAX_ATTRIBUTES = 100
_MAX_ATTRIBUTE_TEXT = 1024
_MAX_ATTRIBUTE_ITEMS = 100


class Problem(StrEnum):
    """Why an impression can never be delivered (retrying the same data cannot fix it)."""

    NOT_AN_OBJECT = "not_an_object"
    NO_KEY = "no_key"
    NO_FLAG = "no_flag"
    NO_TREATMENT = "no_treatment"
    FIELD_TOO_LONG = "field_too_long"
    NOT_UNICODE = "not_unicode"  # a string with lone surrogates: no valid JSON text can carry it


class Impression(NamedTuple):
    """One evaluation, whichever way it arrived. A NamedTuple: built on the SDK's evaluating thread, cheaply."""

    key: str
    feature: str
    treatment: str
    label: str | None = None
    change_number: int | None = None
    time_ms: int | None = None
    bucketing_key: str | None = None
    environment_name: str | None = None
    sdk_language_version: str | None = None


def from_webhook(item: Any) -> Impression | Problem:
    """One element of FME's impressions webhook array (sample: examples/bodies/split-impressions-webhook.json)."""
    if not isinstance(item, Mapping):
        return Problem.NOT_AN_OBJECT
    sdk, version = _text(item.get("sdk")), _text(item.get("sdkVersion"))
    return _build(
        item.get("key"),
        item.get("split"),
        item.get("treatment"),
        item.get("label"),
        item.get("splitVersionNumber"),
        item.get("time"),
        item.get("bucketingKey"),
        item.get("environmentName"),
        # The SDK listener gets "python-10.7.0"; the webhook has the two halves.
        f"{sdk}-{version}" if sdk and version else sdk,
    )


def from_sdk(impression: Any, sdk_language_version: Any = None, environment_name: Any = None) -> Impression | Problem:
    """``data["impression"]`` as the Python SDK hands it to a listener: a namedtuple (``matching_key``,
    ``feature_name``, ``treatment``, ``label``, ``change_number``, ``bucketing_key``, ``time``, ...)."""
    if isinstance(impression, Mapping):
        get = impression.get
        fields = (get("matching_key"), get("feature_name"), get("treatment"), get("label"))
        numbers, bucketing_key = (get("change_number"), get("time")), get("bucketing_key")
    else:
        try:
            fields = (impression.matching_key, impression.feature_name, impression.treatment, impression.label)
            numbers = (impression.change_number, impression.time)
            bucketing_key = impression.bucketing_key
        except AttributeError:
            return Problem.NOT_AN_OBJECT
    return _build(*fields, *numbers, bucketing_key, environment_name, sdk_language_version)


def to_event(impression: Impression, *, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``POST /v2/events``: attached to the uid's most recent session (last 30 minutes)."""
    details: dict[str, Any] = {
        "feature": impression.feature,
        "treatment": impression.treatment,
        "keyName": impression.key,
    }
    if impression.label is not None:
        details["label"] = impression.label
    if impression.change_number is not None:
        details["changeNumber"] = impression.change_number
    if impression.time_ms is not None:
        details["time"] = impression.time_ms
    if impression.bucketing_key is not None:
        details["bucketingKey"] = impression.bucketing_key
    properties: dict[str, Any] = {"impression": details}
    if impression.environment_name is not None:
        properties["environmentName"] = impression.environment_name
    if impression.sdk_language_version is not None:
        properties["sdkLanguageVersion"] = impression.sdk_language_version
    if attributes:
        properties["attributes"] = safe_attributes(attributes)
    event: dict[str, Any] = {
        "name": EVENT_NAME,
        "properties": properties,
        "user": {"uid": impression.key},
        "session": {"use_most_recent": True},
    }
    if impression.time_ms is not None:
        event["timestamp"] = iso_timestamp(impression.time_ms)
    return event


def dedup_key(impression: Impression) -> str:
    """What makes two impressions "the same" for FullStory: key, flag, treatment and flag version."""
    return _digest([impression.key, impression.feature, impression.treatment, impression.change_number])


def idempotency_key(body: bytes) -> str:
    """The ``Idempotency-Key`` of one exact request body: a single event or a whole batch job.

    FullStory errors when one key arrives with two different bodies, so the key is the body's digest:
    identical bodies share a key (FME's retry, or the listener and the webhook sending the same
    evaluation), different bodies never do. The listener and the webhook build identical bodies when the
    listener knows the environment name (``SPLIT_ENVIRONMENT_NAME``) and sends no attributes.
    """
    return "fs2split-imp-" + hashlib.blake2b(body, digest_size=20).hexdigest()


def iso_timestamp(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds (``2022-11-10T18:59:50.992Z``), exactly."""
    m = _EPOCH + timedelta(milliseconds=ms)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{ms % 1000:03d}Z"


def safe_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluation attributes as JSON FullStory accepts: scalars and lists of scalars, bounded in size."""
    safe: dict[str, Any] = {}
    for name, value in list(attributes.items())[:_MAX_ATTRIBUTES]:
        if not isinstance(name, str) or not name or not _unicode(name):
            continue
        if isinstance(value, list | tuple | set | frozenset):
            items = [_scalar(v) for v in list(value)[:_MAX_ATTRIBUTE_ITEMS]]
            safe[name[:_MAX_ATTRIBUTE_TEXT]] = [v for v in items if v is not None]
        else:
            scalar = _scalar(value)
            if scalar is not None:
                safe[name[:_MAX_ATTRIBUTE_TEXT]] = scalar
    return safe


def _build(
    key: Any,
    feature: Any,
    treatment: Any,
    label: Any,
    change_number: Any,
    time_ms: Any,
    bucketing_key: Any,
    environment_name: Any,
    sdk_language_version: Any,
) -> Impression | Problem:
    # FME keys are strings, but the SDKs accept numbers and stringify them.
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    key, feature, treatment = _text(key), _text(feature), _text(treatment)
    if key is None:
        return Problem.NO_KEY
    if feature is None:
        return Problem.NO_FLAG
    if treatment is None:
        return Problem.NO_TREATMENT
    label, bucketing_key = _text(label), _text(bucketing_key)
    environment_name, sdk_language_version = _text(environment_name), _text(sdk_language_version)
    if len(key) > MAX_KEY_CHARS:
        return Problem.FIELD_TOO_LONG
    for text in (key, feature, treatment, label, bucketing_key, environment_name, sdk_language_version):
        if text is not None:
            if len(text) > MAX_TEXT_CHARS:
                return Problem.FIELD_TOO_LONG
            if not _unicode(text):
                return Problem.NOT_UNICODE
    return Impression(
        key,
        feature,
        treatment,
        label,
        _integer(change_number),
        _integer(time_ms, _MIN_MS, _MAX_MS),
        bucketing_key,
        environment_name,
        sdk_language_version,
    )


def _text(value: Any) -> str | None:
    """A non-blank string, or None."""
    return value if isinstance(value, str) and value.strip() else None


def _unicode(text: str) -> bool:
    """Whether UTF-8 can encode it (Python strings may hold lone surrogates, e.g. from JSON "\\ud800")."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _integer(value: Any, lowest: int = -(2**63), highest: int = 2**63 - 1) -> int | None:
    """An integral number within range (JSON may say 1.6e12, or NaN), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and lowest <= value <= highest:
        return value
    return None


def _scalar(value: Any) -> str | int | float | bool | None:
    if isinstance(value, bool | int):
        return value if isinstance(value, bool) or -(2**53) <= value <= 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:_MAX_ATTRIBUTE_TEXT] if _unicode(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    return None


def _digest(parts: list[Any]) -> str:
    # Length-prefixed parts cannot run into each other, whatever a key contains; hashing bounds the size
    # of what the dedup store keeps per impression.
    text = "".join(f"{len(p)}:{p}" if isinstance(p, str) else f"~{p!r}" for p in parts)
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=20).hexdigest()
