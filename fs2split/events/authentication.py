"""Who may POST FullStory events: a v1 webhook signature, or a Stream's bearer token.

With both ``FULLSTORY_WEBHOOK_SECRET`` and ``FULLSTORY_STREAM_TOKEN`` configured, either one valid
is enough: a function may serve v1 webhooks and Streams at once. With neither, anything is accepted.
"""

from __future__ import annotations

import hmac

from fs2split.config.keys import FULLSTORY_STREAM_TOKEN, FULLSTORY_WEBHOOK_SECRET, FULLSTORY_WEBHOOK_SECRET_PREVIOUS
from fs2split.events import signature
from fs2split.http_types import Request
from fs2split.instance import Instance
from fs2split.outcome import Outcome, Reason

_BEARER = "bearer "


def refusal(request: Request, instance: Instance) -> Outcome | None:
    """None when the request may go on; else the 401. Raises SecretUnavailable."""
    secret = instance.keys.get(FULLSTORY_WEBHOOK_SECRET)
    token = instance.keys.get(FULLSTORY_STREAM_TOKEN)
    if secret is None and token is None:
        return None
    signed = request.header(signature.HEADER)
    if token is not None and _bearer_matches(request.header("Authorization"), token):
        return None
    if secret is not None and (signed or token is None):
        previous = instance.keys.get(FULLSTORY_WEBHOOK_SECRET_PREVIOUS)
        problem = signature.verify(
            signed,
            request.body,
            [secret, previous] if previous else [secret],
            tolerance_s=instance.settings.signature_tolerance_s,
        )
        return Outcome(Reason.SIGNATURE_INVALID, problem) if problem else None
    if signed:
        return Outcome(Reason.SIGNATURE_INVALID, f"a {signature.HEADER} header was sent, but no webhook secret is set")
    return Outcome(Reason.TOKEN_INVALID, "missing or wrong Authorization: Bearer token for this Stream")


def _bearer_matches(header: str | None, token: str) -> bool:
    if not header or header[: len(_BEARER)].lower() != _BEARER:
        return False
    # Constant time, so response timing does not reveal how much of the token was right.
    return hmac.compare_digest(header[len(_BEARER) :].strip().encode(), token.encode())
