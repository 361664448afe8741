"""Upstream text made fit for a response or a log line.

Gateways and proxies in front of FME or FullStory echo the request, ``Authorization`` header included,
in their error pages. So before any upstream text is used it is scrubbed of every secret value the
instance holds, cut after ``Bearer `` / ``Basic `` (whatever follows is a credential), cut to 300
characters and made safe to encode (lone surrogates replaced, control characters turned into spaces).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_CHARS = 300
REDACTED = "[redacted]"
_CREDENTIAL = re.compile(r"\b(bearer|basic)\s", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
# Secrets shorter than this are not searched for: removing every "a" would make the text useless and
# a one-character key is not a secret worth the name.
_MIN_SECRET = 4


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    # Whole text first: cutting before scrubbing could leave a secret's prefix at the end.
    text = safe_text(text)
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(safe_text(secret), REDACTED)
    match = _CREDENTIAL.search(text)
    if match:
        text = f"{text[: match.end()]}{REDACTED}"
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def safe_text(text: str) -> str:
    """The same text with lone surrogates (which no UTF-8 encoder accepts) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text
