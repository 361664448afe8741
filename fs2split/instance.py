"""What one warm instance keeps between requests: settings, keys, the HTTP session, caches.

Built on first use from the environment, so importing fs2split costs nothing and a cold
start pays only for what the first request needs.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fs2split import logs
from fs2split.clients.upstream import Upstream
from fs2split.config.keys import FULLSTORY_API_KEY, SPLIT_API_KEY, Keys, blank_secrets
from fs2split.config.settings import Settings, SettingsError
from fs2split.events import mapping_source
from fs2split.events.event_type import renames_problem
from fs2split.events.identity import UidResolver
from fs2split.stores.configured import dedup_store
from fs2split.stores.dedup import DedupStore, MemoryDedupStore

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fs2split.events.mapping import EventMapping


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
    # How FullStory events map to FME events (None: the core's behaviour), read once per instance.
    mapping: EventMapping | None = None
    # A one-line reason when the mapping cannot be used: every FullStory webhook then answers 503.
    mapping_error: str | None = None
    # Queue mode: the SQS or Pub/Sub client, built on first use (fs2split/queue/enqueue.py).
    queue: object | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, mapping_dir: Path | None = mapping_source.DEFAULT_DIR
    ) -> Instance:
        """``mapping_dir`` is where an ``fs2split.yaml`` is looked for: beside ``main.py`` by default."""
        error = None
        try:
            settings = Settings.from_env(env)
        except SettingsError as problem:
            settings, error = Settings.fallback(env), str(problem)
        if error is None and (error := renames_problem(settings.event_type_map)):
            settings = Settings.fallback(env)
        blank = blank_secrets(env)
        if blank and not error:
            error = f"{blank[0]}: is only whitespace; give it the value, or leave it empty to turn it off"
        logs.configure(settings.log_level)
        if error:
            logs.emit(logging.ERROR, f"invalid settings: {error}", reason="settings_invalid")
        mapping, mapping_error = _mapping(env, mapping_dir)
        upstream = Upstream(
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            backoff_factor=settings.retry_backoff_s,
            # Every concurrent impressions call keeps its connection for the next webhook.
            pool_size=max(32, settings.impressions_concurrency),
        )
        instance = cls(
            settings=settings,
            keys=Keys(env),
            upstream=upstream,
            uids=UidResolver(ttl_s=settings.uid_cache_ttl_s, max_size=settings.uid_cache_size),
            # Shared across instances when FS2SPLIT_DEDUP_STORE says so (issue 16); the session is reused.
            dedup=dedup_store(settings, os.environ if env is None else env, upstream.session),
            impressions_seen=MemoryDedupStore(ttl_s=settings.impression_dedup_s, max_size=settings.dedup_size),
            settings_error=error,
            mapping=mapping,
            mapping_error=mapping_error,
        )
        logs.emit(logging.INFO, instance.started_message(), keyless=instance.keyless, dry_run=instance.dry_run)
        return instance

    def __post_init__(self) -> None:
        # Upstream error text is scrubbed of every secret this instance holds, whichever Keys it has now.
        self.upstream.secrets = lambda: self.keys.known_values()

    @property
    def dry_run(self) -> bool:
        return self.settings.force_dry_run or not self.keys.configured(SPLIT_API_KEY)

    @property
    def keyless(self) -> bool:
        """No key at all (the run a newcomer starts): both directions are dry runs and nothing is sent."""
        return not (self.keys.configured(SPLIT_API_KEY) or self.keys.configured(FULLSTORY_API_KEY))

    def started_message(self) -> str:
        if self.keyless:
            return (
                "fs2split started with no key: a dry run that sends nothing anywhere; "
                "set SPLIT_API_KEY and FULLSTORY_API_KEY to send"
            )
        if self.settings.force_dry_run:
            return "fs2split started: FS2SPLIT_DRY_RUN is set, so nothing is sent anywhere"
        return "fs2split started"


def _mapping(env: Mapping[str, str] | None, directory: Path | None) -> tuple[EventMapping | None, str | None]:
    if not mapping_source.configured(env, legacy_dir=directory):
        return None, None
    # Only now: a function without a mapping never imports the loader, the matcher or YAML.
    from fs2split.events import mapping_file
    from fs2split.events.mapping import MappingError

    try:
        mapping = mapping_file.load(env, legacy_dir=directory)
    except MappingError as problem:
        logs.emit(logging.ERROR, str(problem), reason="mapping_invalid")
        return None, str(problem)
    if mapping is not None:
        logs.emit(logging.INFO, "mapping loaded", mapping=mapping.summary())
        for note in mapping.notes:
            logs.emit(logging.WARNING, note, mapping_source=mapping.source)
    return mapping, None


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
