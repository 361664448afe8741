"""Which dedup store an instance uses (``FS2SPLIT_DEDUP_STORE``), built from its settings.

Each backend's module, and its SDK, is imported only when that backend is configured, so the
default (``memory``) costs a cold start nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import requests

from fs2split.config.settings import Settings
from fs2split.stores.dedup import DedupStore, MemoryDedupStore

if TYPE_CHECKING:
    from fs2split.stores.records import Windows

BACKENDS = ("memory", "firestore", "dynamodb")


def windows(settings: Settings) -> Windows:
    from fs2split.stores.records import LEASE_MARGIN_S, Windows  # shared stores only: memory needs no records

    # A crashed or timed-out instance blocks a key for the delivery's budget plus a margin, not the window.
    return Windows(lease_s=settings.retry_budget_s + LEASE_MARGIN_S, done_s=settings.dedup_ttl_s)


def dedup_store(settings: Settings, env: Mapping[str, str], session: requests.Session) -> DedupStore:
    if settings.dedup_store == "memory":
        return MemoryDedupStore(ttl_s=settings.dedup_ttl_s, max_size=settings.dedup_size)
    from fs2split.stores.guarded import GuardedStore

    inner: DedupStore
    if settings.dedup_store == "dynamodb":
        from fs2split.stores.dynamodb import DynamoDbDedupStore

        inner = DynamoDbDedupStore(table=settings.dedup_table, windows=windows(settings), env=env)
    else:
        from fs2split.stores.firestore import FirestoreDedupStore

        inner = FirestoreDedupStore(
            collection=settings.dedup_table,
            database=settings.firestore_database,
            windows=windows(settings),
            env=env,
            session=session,
        )
    return GuardedStore(inner, backend=settings.dedup_store, refuse=settings.dedup_on_store_error == "refuse")
