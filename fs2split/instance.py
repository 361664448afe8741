"""What one warm instance keeps between requests: settings, keys, the HTTP session, caches.

Built on first use from the environment, so importing fs2split costs nothing and a cold
start pays only for what the first request needs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fs2split import logs
from fs2split.dedup import DedupStore, MemoryDedupStore
from fs2split.identity import UidResolver
from fs2split.keys import SPLIT_API_KEY, Keys
from fs2split.settings import Settings, SettingsError
from fs2split.upstream import Upstream

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass
class Instance:
    settings: Settings
    keys: Keys
    upstream: Upstream
    uids: UidResolver
    dedup: DedupStore
    # Impressions already written to FullStory: (key, flag, treatment, change number).
    impressions_seen: DedupStore
    # A one-line reason when the settings cannot be used: every webhook then answers 503.
    settings_error: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Instance:
        error = None
        try:
            settings = Settings.from_env(env)
        except SettingsError as problem:
            settings, error = Settings(), str(problem)
        logs.configure(settings.log_level)
        if error:
            logs.emit(logging.ERROR, f"invalid settings: {error}", reason="settings_invalid")
        return cls(
            settings=settings,
            keys=Keys(env),
            upstream=Upstream(
                connect_timeout_s=settings.connect_timeout_s,
                read_timeout_s=settings.read_timeout_s,
                backoff_factor=settings.retry_backoff_s,
            ),
            uids=UidResolver(ttl_s=settings.uid_cache_ttl_s, max_size=settings.uid_cache_size),
            dedup=MemoryDedupStore(ttl_s=settings.dedup_ttl_s, max_size=settings.dedup_size),
            impressions_seen=MemoryDedupStore(ttl_s=settings.impression_dedup_s, max_size=settings.dedup_size),
            settings_error=error,
        )

    @property
    def dry_run(self) -> bool:
        return self.settings.force_dry_run or not self.keys.configured(SPLIT_API_KEY)


_current: Instance | None = None
_lock = threading.Lock()


def current() -> Instance:
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Instance.from_env()
    return _current


def reset() -> None:
    """Forget the instance, so the next request reads the environment again (tests, reloads)."""
    global _current
    with _lock:
        if _current is not None:
            _current.upstream.close()
        _current = None
