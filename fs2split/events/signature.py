"""FullStory webhook signatures.

Header ``Fullstory-Signature: o:<orgId>,t:<timestamp>,v:<signature>``, where the signature is
base64(HMAC-SHA256(secret, raw body + ":" + orgId + ":" + timestamp)). Checked on the raw bytes,
in constant time, against the current secret and, during a rotation, the previous one.
The unit of ``t`` is unconfirmed: seconds and milliseconds are both accepted.

Whether FullStory re-signs a retry is unconfirmed, and it retries for up to 5 hours: the past
limit (``tolerance_s``, 6 hours by default) covers that; a stamp from the future is a clock
problem or a forgery, so more than ``MAX_FUTURE_S`` ahead is always refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

HEADER = "Fullstory-Signature"
MAX_FUTURE_S = 300.0
_MILLISECONDS_FROM = 10**11  # a seconds timestamp passes this in the year 5138
_ASCII_DIGITS = frozenset("0123456789")


def sign(secret: str, body: bytes, org_id: str, timestamp: str) -> str:
    message = body + f":{org_id}:{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance_s: float,
    now: Callable[[], float] = time.time,
) -> str | None:
    """None when the signature is valid; otherwise a one-line reason (never a secret)."""
    if not header:
        return f"missing {HEADER} header"
    parts = _parts(header)
    if isinstance(parts, str):
        return parts
    org_id, stamp, signature = parts.get("o"), parts.get("t"), parts.get("v")
    if not org_id or not stamp or not signature:
        return f"malformed {HEADER} header: expected o:<org>,t:<timestamp>,v:<signature>"
    # str.isdigit() accepts "²" and other digits int() reads differently; only ASCII is a timestamp.
    if not set(stamp) <= _ASCII_DIGITS or len(stamp) > 16:
        return f"malformed {HEADER} header: the timestamp is not a number"
    sent_at = int(stamp)
    sent_at_s = sent_at / 1000 if sent_at >= _MILLISECONDS_FROM else float(sent_at)
    age_s = now() - sent_at_s
    if age_s > tolerance_s:
        return f"stale signature: its timestamp is more than {tolerance_s:g} s old"
    if -age_s > MAX_FUTURE_S:
        return f"signature from the future: its timestamp is more than {MAX_FUTURE_S:g} s ahead of now"
    given = signature.encode()
    # Check every secret without stopping early, so timing does not tell which one matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, body, org_id, stamp).encode(), given)
    return None if matched else "signature does not match"


def _parts(header: str) -> dict[str, str] | str:
    """The header's named parts, or why it is refused: a part named twice is ambiguous."""
    parts: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition(":")
        if not sep:
            continue
        name = name.strip()
        if name in parts:
            return f"malformed {HEADER} header: {name[:10]!r} is given more than once"
        parts[name] = value.strip()
    return parts
