"""Send many FME events in few calls: chunks of at most 5,000 events and under 1 MB (FME's recommendation),
and a refused chunk is halved until the events FME refuses are isolated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fs2split.clients.upstream import Reply

MAX_EVENTS = 5000
MAX_BYTES = 1_000_000


class Fate(StrEnum):
    SENT = "sent"
    REFUSED = "refused"  # FME refused this very event (4xx when sent alone)
    RETRY = "retry"  # FME down, rate limiting or refusing our key: try again later


@dataclass
class BulkResult:
    fates: list[Fate]
    calls: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # by reason: fme_unavailable, fme_unauthorized, ...
    refusals: list[str] = field(default_factory=list)  # FME's one-line answers, for the log


def send_all(events: Sequence[dict[str, Any]], send: Callable[[list[dict[str, Any]]], Reply]) -> BulkResult:
    """The fate of each event, in order. After a 'not now' answer nothing more is sent this run."""
    result = BulkResult(fates=[Fate.RETRY] * len(events))
    stopped = False

    def deliver(indexes: list[int]) -> None:
        nonlocal stopped
        if stopped or not indexes:
            return
        reply = send([events[i] for i in indexes])
        result.calls += 1
        if reply.ok:
            for i in indexes:
                result.fates[i] = Fate.SENT
            return
        if reply.transient or reply.status in (401, 403) or not 400 <= reply.status < 500:
            why = "fme_unauthorized" if reply.status in (401, 403) else "fme_unavailable"
            result.failures[why] = result.failures.get(why, 0) + 1
            stopped = True  # the rest would fail the same way: stop calling FME this run
            return
        if len(indexes) == 1:
            result.fates[indexes[0]] = Fate.REFUSED
            result.failures["fme_rejected"] = result.failures.get("fme_rejected", 0) + 1
            result.refusals.append(reply.describe())
            return
        middle = len(indexes) // 2
        deliver(indexes[:middle])
        deliver(indexes[middle:])

    for chunk in _chunks(events):
        deliver(chunk)
    return result


def _chunks(events: Sequence[dict[str, Any]]) -> list[list[int]]:
    chunks: list[list[int]] = []
    size = 2
    for index, event in enumerate(events):
        length = len(json.dumps(event, separators=(",", ":"))) + 1
        if not chunks or len(chunks[-1]) >= MAX_EVENTS or size + length > MAX_BYTES:
            chunks.append([])
            size = 2
        chunks[-1].append(index)
        size += length
    return chunks
