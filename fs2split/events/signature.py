"""FullStory webhook signatures.

Header ``Fullstory-Signature: o:<orgId>,t:<timestamp>,v:<signature>``, where the signature is
base64(HMAC-SHA256(secret, raw body + ":" + orgId + ":" + timestamp)). Checked on the raw bytes,
in constant time, against the current secret and, during a rotation, the previous one.
The unit of ``t`` is unconfirmed: seconds and milliseconds are both accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

HEADER = "Fullstory-Signature"
_MILLISECONDS_FROM = 10**11  # a seconds timestamp passes this in the year 5138


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
    parts: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition(":")
        if sep:
            parts[name.strip()] = value.strip()
    org_id, stamp, signature = parts.get("o"), parts.get("t"), parts.get("v")
    if not org_id or not stamp or not signature:
        return f"malformed {HEADER} header: expected o:<org>,t:<timestamp>,v:<signature>"
    if not stamp.isdigit() or len(stamp) > 16:
        return f"malformed {HEADER} header: the timestamp is not a number"
    sent_at = int(stamp)
    sent_at_s = sent_at / 1000 if sent_at >= _MILLISECONDS_FROM else float(sent_at)
    if abs(now() - sent_at_s) > tolerance_s:
        return f"stale signature: its timestamp is more than {tolerance_s:g} s from now"
    given = signature.encode()
    # Check every secret without stopping early, so timing does not tell which one matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, body, org_id, stamp).encode(), given)
    return None if matched else "signature does not match"
