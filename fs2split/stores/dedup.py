"""Remember which deliveries are done, so a redelivered webhook sends nothing twice.

``MemoryDedupStore`` is per instance (process memory): two instances may each deliver the same
redelivery once. ``DedupStore`` is the seam for the shared stores (``firestore.py``,
``dynamodb.py``, chosen in ``configured.py``). A delivery is remembered only once it succeeded,
so the sender's retry of a failed one goes through.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Protocol

from cachetools import TTLCache


class Claim(StrEnum):
    NEW = "new"  # go ahead, then call done() or release()
    DONE = "done"  # already delivered within the window
    IN_FLIGHT = "in_flight"  # another request is delivering it right now


class DedupStore(Protocol):
    # lease_s: how long a claim holds before another may take it over (shared stores; None: the
    # store's own lease, the retry budget plus a margin). A drain that claims early passes its budget.
    def claim(self, key: str, *, lease_s: float | None = None) -> Claim: ...
    def done(self, key: str) -> None: ...
    def release(self, key: str) -> None: ...


class MemoryDedupStore:
    def __init__(self, *, ttl_s: float, max_size: int) -> None:
        self._done: TTLCache[str, bool] = TTLCache(maxsize=max_size, ttl=max(ttl_s, 0.001))
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, key: str, *, lease_s: float | None = None) -> Claim:
        # lease_s does not apply: an in-flight claim here dies with its process, never outlives it.
        with self._lock:
            if key in self._done:
                return Claim.DONE
            if key in self._in_flight:
                return Claim.IN_FLIGHT
            self._in_flight.add(key)
            return Claim.NEW

    def done(self, key: str) -> None:
        with self._lock:
            self._in_flight.discard(key)
            self._done[key] = True

    def release(self, key: str) -> None:
        with self._lock:
            self._in_flight.discard(key)


# Short: a shared store is usually back within seconds, and FullStory's own backoff comes on top.
UNAVAILABLE_RETRY_AFTER_S = 5.0


class DedupUnavailable(Exception):
    """A shared store could not say whether this webhook was delivered, and the settings say refuse
    (``FS2SPLIT_DEDUP_ON_STORE_ERROR=refuse``, `fs2split.stores.guarded`). The message is one line, no secrets."""
