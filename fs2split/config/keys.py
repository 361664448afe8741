"""Secrets behind one small interface: API keys, the webhook secret, the impressions token.

For a secret NAME, the first of these that is set wins:

1. the environment variable ``NAME`` (the value itself);
2. ``NAME_SECRET``: a reference to a GCP Secret Manager version or an AWS Secrets Manager
   secret, fetched on first use and cached for ``FS2SPLIT_SECRET_TTL_SECONDS``;
3. a file called ``NAME`` beside ``main.py``, as the original bridge read its keys.

Values never reach a log, a response or an exception message.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fs2split.config.errors import SecretUnavailable
from fs2split.deadline import remaining

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

SPLIT_API_KEY = "SPLIT_API_KEY"
FULLSTORY_API_KEY = "FULLSTORY_API_KEY"
FULLSTORY_WEBHOOK_SECRET = "FULLSTORY_WEBHOOK_SECRET"
FULLSTORY_WEBHOOK_SECRET_PREVIOUS = "FULLSTORY_WEBHOOK_SECRET_PREVIOUS"
SPLIT_IMPRESSIONS_TOKEN = "SPLIT_IMPRESSIONS_TOKEN"
# The bearer token a FullStory Stream destination sends (Streams are not signed like v1 webhooks).
FULLSTORY_STREAM_TOKEN = "FULLSTORY_STREAM_TOKEN"

_LEGACY_FILES = (SPLIT_API_KEY, FULLSTORY_API_KEY)
SECRET_NAMES = (
    SPLIT_API_KEY,
    FULLSTORY_API_KEY,
    FULLSTORY_WEBHOOK_SECRET,
    FULLSTORY_WEBHOOK_SECRET_PREVIOUS,
    SPLIT_IMPRESSIONS_TOKEN,
)
_DEFAULT_DIR = Path(__file__).resolve().parents[2]  # beside main.py
_log = logging.getLogger("fs2split")

__all__ = [
    "FULLSTORY_API_KEY",
    "FULLSTORY_STREAM_TOKEN",
    "FULLSTORY_WEBHOOK_SECRET",
    "FULLSTORY_WEBHOOK_SECRET_PREVIOUS",
    "SPLIT_API_KEY",
    "SPLIT_IMPRESSIONS_TOKEN",
    "Keys",
    "SecretUnavailable",
]


class Keys:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        legacy_dir: Path | None = _DEFAULT_DIR,
        fetch: Callable[[str], str] | None = None,
        ttl_s: float | None = None,
    ) -> None:
        self._env = os.environ if env is None else env
        self._legacy_dir = legacy_dir
        self._fetch = fetch
        self._ttl_s = ttl_s if ttl_s is not None else float(self._env.get("FS2SPLIT_SECRET_TTL_SECONDS") or 300)
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        # Every value handed out, so upstream text can be scrubbed of it (see known_values).
        self._handed_out: set[str] = set()

    def configured(self, name: str) -> bool:
        """Whether a value can be had for NAME, without fetching it (cheap: health checks use it)."""
        return bool(
            self._env.get(name, "").strip()
            or self._env.get(f"{name}_SECRET", "").strip()
            or self._legacy_file(name) is not None
        )

    def get(self, name: str) -> str | None:
        """The value of NAME, or None when it is not configured.

        Raises SecretUnavailable when a secret reference is configured but cannot be read and
        no earlier value is cached.
        """
        value = self._get(name)
        if value is not None and value not in self._handed_out:
            with self._lock:
                self._handed_out.add(value)
        return value

    def known_values(self) -> list[str]:
        """Every secret value this instance holds: set in the environment, or read from a manager or a file."""
        direct = (self._env.get(name, "").strip() for name in SECRET_NAMES)
        with self._lock:
            return [*(value for value in direct if value), *self._handed_out]

    def _get(self, name: str) -> str | None:
        direct = self._env.get(name, "").strip()
        if direct:
            return direct
        reference = self._env.get(f"{name}_SECRET", "").strip()
        if reference:
            return self._from_reference(name, reference)
        path = self._legacy_file(name)
        if path is not None:
            return path.read_text().strip() or None
        return None

    def _from_reference(self, name: str, reference: str) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached and now < cached[1]:
            return cached[0]
        try:
            value = self._fetch_within_budget(name, reference)
        except SecretUnavailable as error:
            if cached:
                # A failed refresh should not take the function down while the old value works.
                _log.warning("secret refresh failed for %s_SECRET, keeping the cached value: %s", name, error)
                return cached[0]
            raise
        with self._lock:
            self._cache[name] = (value, now + self._ttl_s)
        return value

    def _fetch_within_budget(self, name: str, reference: str) -> str:
        """The fetch counts against the request's time budget: a secret manager that hangs (the SDKs retry
        for a minute or more) must not hold the answer past it."""
        fetch = self._fetch or _fetch_secret
        left = remaining()
        if left is None:
            return fetch(reference)
        if left <= 0:
            raise SecretUnavailable(f"{name}_SECRET", "no time left in the request's budget to fetch it")
        # Imported here: most functions take their keys from the environment and never need a thread.
        from concurrent.futures import TimeoutError as FutureTimeout

        future = _fetcher().submit(fetch, reference)

        def keep(done: Future[str]) -> None:
            # A fetch that finishes after the request gave up still serves the next request.
            if not done.cancelled() and done.exception() is None:
                with self._lock:
                    self._cache[name] = (done.result(), time.monotonic() + self._ttl_s)

        future.add_done_callback(keep)
        try:
            return future.result(timeout=left)
        except FutureTimeout:
            raise SecretUnavailable(f"{name}_SECRET", f"no answer within the request's budget ({left:.1f}s)") from None

    def _legacy_file(self, name: str) -> Path | None:
        if name not in _LEGACY_FILES or self._legacy_dir is None:
            return None
        path = self._legacy_dir / name
        return path if path.is_file() else None


def blank_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Secret settings set to whitespace only: most likely a paste gone wrong, never "off".

    An empty string still means "not set"; whitespace alone used to be read the same way and silently
    turned the webhook signature check off.
    """
    e = os.environ if env is None else env
    names = [*SECRET_NAMES, *(f"{name}_SECRET" for name in SECRET_NAMES)]
    return [name for name in names if (value := e.get(name)) and not value.strip()]


_fetcher_pool: ThreadPoolExecutor | None = None


def _fetcher() -> ThreadPoolExecutor:
    global _fetcher_pool
    with _pool_lock:
        if _fetcher_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _fetcher_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fs2split-secret")
        return _fetcher_pool


_pool_lock = threading.Lock()


def _fetch_secret(reference: str) -> str:
    # Imported on the first secret reference only: most functions take their keys from the environment.
    from fs2split.config.secret_managers import fetch_secret

    return fetch_secret(reference)
