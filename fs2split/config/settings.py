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

DEFAULT_SPLIT_EVENTS_URL = "https://events.split.io/api"
DEFAULT_FULLSTORY_API_URL = "https://api.fullstory.com"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
KEY_FALLBACKS = ("none", "fullstory_user_id")
DELIVERIES = ("direct", "queue")
DEDUP_STORES = ("memory", "firestore", "dynamodb")
DEDUP_ON_STORE_ERROR = ("deliver", "refuse")


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
    signature_tolerance_s: float = 6 * 3600.0  # FullStory retries for up to 5 hours
    max_body_bytes: int = 1024 * 1024
    impressions_max_body_bytes: int = 6 * 1024 * 1024
    impressions_max_inflated_bytes: int = 64 * 1024 * 1024
    impressions_max_items: int = 100_000
    dedup_ttl_s: float = 6 * 3600.0
    dedup_size: int = 100_000
    impression_dedup_s: float = 1800.0
    impressions_concurrency: int = 16
    # More impressions to write than this in one webhook: FullStory's batch import instead of single creates.
    impressions_batch_threshold: int = 100
    # The FME environment the Python SDK listener reports, as the webhook's environmentName.
    split_environment_name: str | None = None
    retry_budget_s: float = 8.0
    retry_backoff_s: float = 0.25
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    log_level: str = "INFO"
    # Whether the log line carries a CloudWatch EMF block (FS2SPLIT_METRICS, resolved against the runtime).
    emf_metrics: bool = False
    metrics_namespace: str = "fs2split"
    # Queue mode (fs2split/queue/): acknowledge after a durable enqueue, deliver from a drain.
    delivery: str = "direct"
    queue_url: str = ""
    pubsub_topic: str = ""
    pubsub_subscription: str = ""
    drain_backoff_s: float = 60.0
    drain_s: float = 50.0
    # Shared redelivery dedup (fs2split/stores/): where, in which table or collection, and what to
    # do when the store does not answer.
    dedup_store: str = "memory"
    dedup_table: str = "fs2split-dedup"
    firestore_database: str = "(default)"
    dedup_on_store_error: str = "deliver"

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
        tolerance_s = _number(e, "FS2SPLIT_SIGNATURE_TOLERANCE_SECONDS", 6 * 3600.0, minimum=1)
        emf_metrics, metrics_namespace = _metrics(e)
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
            signature_tolerance_s=tolerance_s,
            max_body_bytes=int(_number(e, "FS2SPLIT_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)),
            impressions_max_body_bytes=int(
                _number(e, "FS2SPLIT_IMPRESSIONS_MAX_BODY_BYTES", 6 * 1024 * 1024, minimum=1024)
            ),
            impressions_max_inflated_bytes=int(
                _number(e, "FS2SPLIT_IMPRESSIONS_MAX_INFLATED_BYTES", 64 * 1024 * 1024, minimum=1024)
            ),
            impressions_max_items=int(_number(e, "FS2SPLIT_IMPRESSIONS_MAX_ITEMS", 100_000, minimum=1)),
            # A replay the signature window still accepts must be caught as a duplicate.
            dedup_ttl_s=_number(e, "FS2SPLIT_DEDUP_TTL_SECONDS", max(6 * 3600.0, tolerance_s), minimum=0),
            dedup_size=int(_number(e, "FS2SPLIT_DEDUP_SIZE", 100_000, minimum=1)),
            impression_dedup_s=_number(e, "FS2SPLIT_IMPRESSION_DEDUP_SECONDS", 1800.0, minimum=0),
            impressions_concurrency=int(_number(e, "FS2SPLIT_IMPRESSIONS_CONCURRENCY", 16, minimum=1)),
            impressions_batch_threshold=int(_number(e, "FS2SPLIT_IMPRESSIONS_BATCH_THRESHOLD", 100, minimum=0)),
            split_environment_name=e.get("SPLIT_ENVIRONMENT_NAME", "").strip() or None,
            retry_budget_s=_number(e, "FS2SPLIT_RETRY_BUDGET_SECONDS", 8.0, minimum=0.5),
            retry_backoff_s=_number(e, "FS2SPLIT_RETRY_BACKOFF_SECONDS", 0.25, minimum=0),
            connect_timeout_s=_number(e, "FS2SPLIT_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.1),
            read_timeout_s=_number(e, "FS2SPLIT_READ_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            log_level=e.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
            emf_metrics=emf_metrics,
            metrics_namespace=metrics_namespace,
            **_queue(e),
            dedup_store=_choice(e, "FS2SPLIT_DEDUP_STORE", DEDUP_STORES),
            dedup_table=_name(e, "FS2SPLIT_DEDUP_TABLE", "fs2split-dedup", r"[A-Za-z0-9_.-]{3,255}"),
            firestore_database=_name(
                e, "FS2SPLIT_FIRESTORE_DATABASE", "(default)", r"\(default\)|[a-z][a-z0-9-]{2,62}"
            ),
            dedup_on_store_error=_choice(e, "FS2SPLIT_DEDUP_ON_STORE_ERROR", DEDUP_ON_STORE_ERROR),
        )

    @classmethod
    def fallback(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The defaults for an instance whose settings are unusable, keeping its metrics settings where they
        can be read: the 503s it then answers must still reach the dashboards and alarms."""
        e = os.environ if env is None else env
        try:
            emf_metrics, metrics_namespace = _metrics(e)
        except SettingsError:
            emf_metrics, metrics_namespace = _metrics(
                {"AWS_LAMBDA_FUNCTION_NAME": e.get("AWS_LAMBDA_FUNCTION_NAME", "")}
            )
        return cls(emf_metrics=emf_metrics, metrics_namespace=metrics_namespace)

    @property
    def max_request_bytes(self) -> int:
        """The most any route accepts; adapters read at most one byte more than this."""
        return max(self.max_body_bytes, self.impressions_max_body_bytes)


def _metrics(env: Mapping[str, str]) -> tuple[bool, str]:
    mode = env.get("FS2SPLIT_METRICS", "auto").strip().lower() or "auto"
    if mode not in ("auto", "emf", "off"):
        raise SettingsError("FS2SPLIT_METRICS: must be auto, emf or off")
    namespace = env.get("FS2SPLIT_METRICS_NAMESPACE", "").strip() or "fs2split"
    # CloudWatch's namespace rules: 1-255 of these characters, and AWS/ is reserved for AWS.
    if not re.fullmatch(r"[A-Za-z0-9._/#:-]{1,255}", namespace) or namespace.startswith("AWS/"):
        raise SettingsError("FS2SPLIT_METRICS_NAMESPACE: 1-255 of A-Z a-z 0-9 . - _ / # :, not starting AWS/")
    # auto: EMF on Lambda only, where CloudWatch Logs reads the block; elsewhere nobody would.
    emf = mode == "emf" or (mode == "auto" and bool(env.get("AWS_LAMBDA_FUNCTION_NAME")))
    return emf, namespace
def _queue(env: Mapping[str, str]) -> dict[str, object]:
    delivery = env.get("FS2SPLIT_DELIVERY", "direct").strip().lower() or "direct"
    if delivery not in DELIVERIES:
        raise SettingsError(f"FS2SPLIT_DELIVERY: must be one of {', '.join(DELIVERIES)}")
    queue_url = env.get("FS2SPLIT_QUEUE_URL", "").strip()
    topic = env.get("FS2SPLIT_PUBSUB_TOPIC", "").strip()
    subscription = env.get("FS2SPLIT_PUBSUB_SUBSCRIPTION", "").strip()
    if topic and not re.fullmatch(r"projects/[^/\s]+/topics/[^/\s]+", topic):
        raise SettingsError("FS2SPLIT_PUBSUB_TOPIC: must be projects/<project>/topics/<topic>")
    if subscription and not re.fullmatch(r"projects/[^/\s]+/subscriptions/[^/\s]+", subscription):
        raise SettingsError("FS2SPLIT_PUBSUB_SUBSCRIPTION: must be projects/<project>/subscriptions/<subscription>")
    if delivery == "queue" and not (queue_url or topic):
        raise SettingsError("FS2SPLIT_DELIVERY=queue needs FS2SPLIT_QUEUE_URL (SQS) or FS2SPLIT_PUBSUB_TOPIC (Pub/Sub)")
    backoff = _number(env, "FS2SPLIT_DRAIN_BACKOFF_SECONDS", 60.0, minimum=1)
    if backoff > 600:
        raise SettingsError("FS2SPLIT_DRAIN_BACKOFF_SECONDS: must be at most 600 (Pub/Sub's longest ack deadline)")
    return {
        "delivery": delivery,
        "queue_url": queue_url,
        "pubsub_topic": topic,
        "pubsub_subscription": subscription,
        # A modified Pub/Sub ack deadline is 0..600 s, SQS visibility 0..43,200 s: one range fits both.
        "drain_backoff_s": backoff,
        "drain_s": _number(env, "FS2SPLIT_DRAIN_SECONDS", 50.0, minimum=1),
    }


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.match(r"^https?://[^/\s]+", value):
        raise SettingsError(f"{name}: must be an http(s) URL")
    return value.rstrip("/")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; the first is the default."""
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise SettingsError(f"{name}: must be one of {', '.join(choices)}")
    return value


def _name(env: Mapping[str, str], name: str, default: str, pattern: str) -> str:
    value = env.get(name, "").strip() or default
    if not re.fullmatch(pattern, value):
        raise SettingsError(f"{name}: {value[:80]!r} is not a usable name")
    return value


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
        if not isinstance(target, str):
            raise SettingsError(f"FS2SPLIT_EVENT_TYPE_MAP: {name!r} maps to {target!r}, which is not a string")
    # Whether FME accepts each target is the events side's rule: Instance.from_env checks it.
    return dict(parsed)
