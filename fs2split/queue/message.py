"""What one queue message holds: a versioned JSON envelope around one FullStory webhook or some impressions.

FullStory messages keep the webhook's raw body, so the drain parses, maps and resolves it with the direct-mode
code and the mapping deployed when it is delivered. Impression messages keep the already validated impressions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fs2split.impressions.event import Impression

VERSION = 1
# SQS takes 1 MiB a message (queue-facts.md; 256 KB before 2026), Pub/Sub 10 MB. Impressions are packed into
# messages of at most this much, so even a queue still at the old SQS limit takes them.
IMPRESSIONS_MESSAGE_BYTES = 240 * 1024
# The largest message fs2split sends: under SQS's 1 MiB with room for the queue's own attributes.
MAX_MESSAGE_BYTES = 1000 * 1024


class Kind(StrEnum):
    FULLSTORY = "fullstory"
    IMPRESSIONS = "impressions"


@dataclass(frozen=True)
class FullStoryMessage:
    key: str  # the direct-mode dedup key of the webhook body
    body: bytes
    enqueued_ms: int


@dataclass(frozen=True)
class ImpressionsMessage:
    impressions: list[Impression]
    enqueued_ms: int


def fullstory(body: bytes, key: str) -> str:
    # The route parsed the body as JSON, so it is UTF-8; surrogateescape keeps it byte-exact regardless.
    text = body.decode("utf-8", errors="surrogateescape")
    return _dump({"v": VERSION, "kind": Kind.FULLSTORY.value, "key": key, "at": _now_ms(), "body": text})


def impressions(items: Sequence[Impression]) -> Iterator[str]:
    """Messages of at most IMPRESSIONS_MESSAGE_BYTES each (one impression is far smaller than that)."""
    at = _now_ms()
    packed: list[str] = []
    size = 0
    for impression in items:
        encoded = _dump(impression._asdict())
        if packed and size + len(encoded) + 1 > IMPRESSIONS_MESSAGE_BYTES - 100:
            yield _envelope_of(packed, at)
            packed, size = [], 0
        packed.append(encoded)
        size += len(encoded) + 1
    if packed:
        yield _envelope_of(packed, at)


def read(data: bytes | None) -> FullStoryMessage | ImpressionsMessage | str:
    """The message, or a one-line reason why it can never be read (it is then dead-lettered)."""
    if data is None:
        return "the message data is not base64"
    try:
        envelope = json.loads(data)
    except (ValueError, RecursionError):
        return "the message is not JSON"
    if not isinstance(envelope, dict) or envelope.get("v") != VERSION:
        return "the message is not an fs2split envelope of version 1"
    at = envelope.get("at")
    at = at if isinstance(at, int) else 0
    kind = envelope.get("kind")
    if kind == Kind.FULLSTORY and isinstance(envelope.get("body"), str) and isinstance(envelope.get("key"), str):
        return FullStoryMessage(envelope["key"], envelope["body"].encode("utf-8", errors="surrogateescape"), at)
    if kind == Kind.IMPRESSIONS and isinstance(envelope.get("items"), list):
        built = [_impression(item) for item in envelope["items"]]
        if all(item is not None for item in built):
            return ImpressionsMessage([item for item in built if item is not None], at)
    return "the message's envelope is incomplete"


def _impression(item: Any) -> Impression | None:
    if not isinstance(item, dict) or set(item) - set(Impression._fields):
        return None
    if not all(isinstance(item.get(name), str) for name in ("key", "feature", "treatment")):
        return None
    try:
        return Impression(**item)
    except TypeError:
        return None


def _envelope_of(packed: list[str], at: int) -> str:
    return f'{{"v":{VERSION},"kind":"{Kind.IMPRESSIONS.value}","at":{at},"items":[{",".join(packed)}]}}'


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _now_ms() -> int:
    return int(time.time() * 1000)
