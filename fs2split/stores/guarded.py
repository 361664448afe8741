"""What a request does when the shared dedup store cannot answer (``FS2SPLIT_DEDUP_ON_STORE_ERROR``).

``deliver`` (the default): deliver anyway, at least once, with a WARNING line (reason
``dedup_unavailable``): a duplicate is better than a lost event. ``refuse``: the claim raises
``DedupUnavailable``, which the route answers 503 so the sender retries later. A store error after
delivery (marking done, releasing) is logged and never changes the answer.
"""

from __future__ import annotations

import logging

from fs2split import logs
from fs2split.stores.dedup import Claim, DedupStore, DedupUnavailable
from fs2split.stores.records import StoreError

REASON = "dedup_unavailable"
class GuardedStore:
    def __init__(self, inner: DedupStore, *, backend: str, refuse: bool) -> None:
        self._inner = inner
        self._backend = backend
        self._refuse = refuse

    def claim(self, key: str, *, lease_s: float | None = None) -> Claim:
        try:
            return self._inner.claim(key, lease_s=lease_s)
        except StoreError as error:
            message = f"the {self._backend} dedup store did not answer ({error})"
            if self._refuse:
                raise DedupUnavailable(f"{message}; retry later") from None
            logs.emit(logging.WARNING, f"{message}; delivering without dedup", reason=REASON, dedup_store=self._backend)
            return Claim.NEW

    def done(self, key: str) -> None:
        self._after_delivery("done", key)

    def release(self, key: str) -> None:
        self._after_delivery("release", key)

    def _after_delivery(self, step: str, key: str) -> None:
        try:
            getattr(self._inner, step)(key)
        except StoreError as error:
            logs.emit(
                logging.WARNING,
                f"the {self._backend} dedup store did not record {step} ({error}); the answer stands",
                reason=REASON,
                dedup_store=self._backend,
            )
