"""One classification of upstream answers, used by every route and the impression listener.

It says three things about an HTTP status from FME or FullStory: whether it is final, whether a retry
later may succeed, and (through the routes' reasons) what the sender is told. The README's outcomes
table describes the same mapping.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # 2xx: delivered
    # No answer, or an answer that means "not now": 408, 409, 425, 429, 5xx. The sender is told 503
    # (fme_unavailable / fullstory_unavailable) and retries.
    RETRY_LATER = "retry_later"
    # Our side is wrong: the key (401, 403) or the URL (1xx, 3xx: fs2split follows no redirect, which
    # would drop the Authorization header). The sender is told 502 (fme_unauthorized / fullstory_rejected)
    # and its retries deliver once the setting is fixed.
    OUR_SETUP = "our_setup"
    # Any other 4xx: the upstream refuses this event itself; final. The sender is told 422 (fme_rejected),
    # or the impression is counted undeliverable.
    REFUSED = "refused"


# Retried inside one request, within the time budget: the upstream answered, and says "again soon".
RETRY_NOW = frozenset({408, 425, 429, 500, 502, 503, 504})
_RETRY_LATER_4XX = frozenset({408, 409, 425, 429})


def classify(status: int) -> Verdict:
    """``status`` 0 means no answer at all (refused, reset, timed out, malformed answer)."""
    if 200 <= status < 300:
        return Verdict.ACCEPTED
    if status == 0 or status >= 500 or status in _RETRY_LATER_4XX:
        return Verdict.RETRY_LATER
    if status in (401, 403) or status < 200 or 300 <= status < 400:
        return Verdict.OUR_SETUP
    return Verdict.REFUSED
