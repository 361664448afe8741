"""Non-secret settings, read once per instance from the environment.

Secrets (API keys, webhook secret, impressions token) are not here: they come from ``keys``,
which may fetch them lazily from a cloud secret manager.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fs2split.events.event_type import is_valid_event_type

DEFAULT_SPLIT_EVENTS_URL = "https://events.split.io/api"
DEFAULT_FULLSTORY_API_URL = "https://api.fullstory.com"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
KEY_FALLBACKS = ("none", "fullstory_user_id")


class SettingsError(ValueError):
    """A setting has a value fs2split cannot use; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    split_events_url: str = DEFAULT_SPLIT_EVENTS_URL
    fullstory_api_url: str = DEFAULT_FULLSTORY_API_URL
    traffic_type: str = "user"
    force_dry_run: bool = False
    event_type_map: Mapping[str, str] | None = None
    loop_guard_events: frozenset[str] = frozenset({"split_evaluation"})
    key_fallback: str = "none"
    uid_cache_ttl_s: float = 3600.0
    uid_cache_size: int = 10_000
    signature_tolerance_s: float = 300.0
    max_body_bytes: int = 1024 * 1024
    impressions_max_body_bytes: int = 6 * 1024 * 1024
    impressions_max_inflated_bytes: int = 64 * 1024 * 1024
    impressions_max_items: int = 100_000
    dedup_ttl_s: float = 3600.0
    dedup_size: int = 100_000
    impression_dedup_s: float = 1800.0
    impressions_concurrency: int = 16
    retry_budget_s: float = 8.0
    retry_backoff_s: float = 0.25
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        traffic_type = e.get("SPLIT_TRAFFIC_TYPE", "user").strip().lower()
        if not traffic_type:
            raise SettingsError("SPLIT_TRAFFIC_TYPE: must not be empty")
        key_fallback = e.get("FS2SPLIT_KEY_FALLBACK", "none").strip().lower()
        if key_fallback not in KEY_FALLBACKS:
            raise SettingsError(f"FS2SPLIT_KEY_FALLBACK: must be one of {', '.join(KEY_FALLBACKS)}")
        loop_guard = e.get("FS2SPLIT_LOOP_GUARD_EVENTS", "split_evaluation")
        return cls(
            split_events_url=_url(e, "SPLIT_EVENTS_URL", DEFAULT_SPLIT_EVENTS_URL),
            fullstory_api_url=_url(e, "FULLSTORY_API_URL", DEFAULT_FULLSTORY_API_URL),
            traffic_type=traffic_type,
            force_dry_run=_bool(e, "FS2SPLIT_DRY_RUN", False),
            event_type_map=_event_type_map(e.get("FS2SPLIT_EVENT_TYPE_MAP", "")),
            # Always guard split_evaluation: it is what the impressions leg writes into FullStory.
            loop_guard_events=frozenset(
                {"split_evaluation", *(n.strip().lower() for n in loop_guard.split(",") if n.strip())}
            ),
            key_fallback=key_fallback,
            uid_cache_ttl_s=_number(e, "FS2SPLIT_UID_CACHE_TTL_SECONDS", 3600.0, minimum=0),
            uid_cache_size=int(_number(e, "FS2SPLIT_UID_CACHE_SIZE", 10_000, minimum=1)),
            signature_tolerance_s=_number(e, "FS2SPLIT_SIGNATURE_TOLERANCE_SECONDS", 300.0, minimum=1),
            max_body_bytes=int(_number(e, "FS2SPLIT_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)),
            impressions_max_body_bytes=int(
                _number(e, "FS2SPLIT_IMPRESSIONS_MAX_BODY_BYTES", 6 * 1024 * 1024, minimum=1024)
            ),
            impressions_max_inflated_bytes=int(
                _number(e, "FS2SPLIT_IMPRESSIONS_MAX_INFLATED_BYTES", 64 * 1024 * 1024, minimum=1024)
            ),
            impressions_max_items=int(_number(e, "FS2SPLIT_IMPRESSIONS_MAX_ITEMS", 100_000, minimum=1)),
            dedup_ttl_s=_number(e, "FS2SPLIT_DEDUP_TTL_SECONDS", 3600.0, minimum=0),
            dedup_size=int(_number(e, "FS2SPLIT_DEDUP_SIZE", 100_000, minimum=1)),
            impression_dedup_s=_number(e, "FS2SPLIT_IMPRESSION_DEDUP_SECONDS", 1800.0, minimum=0),
            impressions_concurrency=int(_number(e, "FS2SPLIT_IMPRESSIONS_CONCURRENCY", 16, minimum=1)),
            retry_budget_s=_number(e, "FS2SPLIT_RETRY_BUDGET_SECONDS", 8.0, minimum=0.5),
            retry_backoff_s=_number(e, "FS2SPLIT_RETRY_BACKOFF_SECONDS", 0.25, minimum=0),
            connect_timeout_s=_number(e, "FS2SPLIT_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.1),
            read_timeout_s=_number(e, "FS2SPLIT_READ_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            log_level=e.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        )

    @property
    def max_request_bytes(self) -> int:
        """The most any route accepts; adapters read at most one byte more than this."""
        return max(self.max_body_bytes, self.impressions_max_body_bytes)


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.match(r"^https?://[^/\s]+", value):
        raise SettingsError(f"{name}: must be an http(s) URL")
    return value.rstrip("/")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}: must be true or false")


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: must be a number") from None
    if not value >= minimum or value == float("inf"):
        raise SettingsError(f"{name}: must be a finite number >= {minimum:g}")
    return value


def _event_type_map(raw: str) -> Mapping[str, str] | None:
    if not raw.strip():
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise SettingsError("FS2SPLIT_EVENT_TYPE_MAP: must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise SettingsError("FS2SPLIT_EVENT_TYPE_MAP: must be a JSON object")
    for name, target in parsed.items():
        if not isinstance(target, str) or not is_valid_event_type(target):
            raise SettingsError(
                f"FS2SPLIT_EVENT_TYPE_MAP: {name!r} maps to {target!r}, which FME refuses as an event type"
            )
    return dict(parsed)
