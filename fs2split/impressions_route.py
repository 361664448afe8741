"""``POST /split/impressions``: FME's outgoing impressions webhook (built by the impressions issue)."""

from __future__ import annotations

from fs2split.http_types import Request
from fs2split.instance import Instance
from fs2split.outcome import Outcome, Reason


def handle(request: Request, instance: Instance) -> Outcome:
    return Outcome(Reason.NOT_FOUND, "the impressions webhook is not available yet")
