"""Outcomes are values: what happened to a request, and the status the sender hears.

Each reason has exactly one HTTP status. 2xx means "delivered, or dropped on purpose": the
sender must not retry. 5xx means "not delivered yet": the sender should retry. Other 4xx are
permanent refusals that a retry of the same request cannot fix. The docs' table of
outcomes (docs/outcomes.md) is checked against ``STATUS`` by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    # Delivered.
    DELIVERED = "delivered"
    DRY_RUN = "dry_run"
    # Queue mode: accepted by the queue (webhooks), or one drain run finished (the drain).
    QUEUED = "queued"
    DRAINED = "drained"
    # Dropped on purpose: 200, so the sender does not retry.
    TEST_EVENT = "test_event"
    IGNORED = "ignored"
    LOOP_GUARD = "loop_guard"
    DROPPED_BY_MAPPING = "dropped_by_mapping"
    NO_USER_ID = "no_user_id"
    ANONYMOUS_USER = "anonymous_user"
    USER_NOT_FOUND = "user_not_found"
    KEY_MISSING = "key_missing"
    DUPLICATE = "duplicate"
    # Impressions FullStory itself refused as invalid (4xx): counted and logged, a retry cannot help.
    UNDELIVERABLE = "undeliverable"
    # Health.
    HEALTHY = "healthy"
    # Refused: the request itself is wrong.
    INVALID_JSON = "invalid_json"
    NOT_A_WEBHOOK = "not_a_webhook"
    SIGNATURE_INVALID = "signature_invalid"
    TOKEN_INVALID = "token_invalid"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    IN_PROGRESS = "in_progress"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    EVENT_INVALID = "event_invalid"
    FME_REJECTED = "fme_rejected"
    # Refused by an upstream for a reason on our side (a key): retrying after the fix delivers.
    FME_UNAUTHORIZED = "fme_unauthorized"
    FULLSTORY_REJECTED = "fullstory_rejected"
    FULLSTORY_KEY_FORBIDDEN = "fullstory_key_forbidden"
    # Not delivered yet: the sender should retry.
    FME_UNAVAILABLE = "fme_unavailable"
    FULLSTORY_UNAVAILABLE = "fullstory_unavailable"
    FULLSTORY_KEY_MISSING = "fullstory_key_missing"
    SECRET_UNAVAILABLE = "secret_unavailable"
    SETTINGS_INVALID = "settings_invalid"
    MAPPING_INVALID = "mapping_invalid"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    DEDUP_UNAVAILABLE = "dedup_unavailable"
    INTERNAL_ERROR = "internal_error"


STATUS: dict[Reason, int] = {
    Reason.DELIVERED: 200,
    Reason.DRY_RUN: 200,
    Reason.QUEUED: 200,
    Reason.DRAINED: 200,
    Reason.TEST_EVENT: 200,
    Reason.IGNORED: 200,
    Reason.LOOP_GUARD: 200,
    Reason.DROPPED_BY_MAPPING: 200,
    Reason.NO_USER_ID: 200,
    Reason.ANONYMOUS_USER: 200,
    Reason.USER_NOT_FOUND: 200,
    Reason.KEY_MISSING: 200,
    Reason.DUPLICATE: 200,
    Reason.UNDELIVERABLE: 200,
    Reason.HEALTHY: 200,
    Reason.INVALID_JSON: 400,
    Reason.NOT_A_WEBHOOK: 400,
    Reason.SIGNATURE_INVALID: 401,
    Reason.TOKEN_INVALID: 401,
    Reason.NOT_FOUND: 404,
    Reason.METHOD_NOT_ALLOWED: 405,
    # 503, not 409: FullStory and FME stop at any 4xx but retry a 5xx, and the first attempt may still fail.
    Reason.IN_PROGRESS: 503,
    Reason.PAYLOAD_TOO_LARGE: 413,
    Reason.EVENT_INVALID: 422,
    Reason.FME_REJECTED: 422,
    Reason.FME_UNAUTHORIZED: 502,
    Reason.FULLSTORY_REJECTED: 502,
    Reason.FULLSTORY_KEY_FORBIDDEN: 502,
    Reason.FME_UNAVAILABLE: 503,
    Reason.FULLSTORY_UNAVAILABLE: 503,
    Reason.FULLSTORY_KEY_MISSING: 503,
    Reason.SECRET_UNAVAILABLE: 503,
    Reason.SETTINGS_INVALID: 503,
    Reason.MAPPING_INVALID: 503,
    Reason.QUEUE_UNAVAILABLE: 503,
    Reason.DEDUP_UNAVAILABLE: 503,
    Reason.INTERNAL_ERROR: 500,
}


# How long a sender should wait before retrying a delivery another request is still making.
IN_PROGRESS_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class Outcome:
    """What the handler decided. ``body`` extends the response; ``log`` extends the log line only."""

    reason: Reason
    message: str
    body: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return STATUS[self.reason]
