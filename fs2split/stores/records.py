"""What a shared dedup store keeps per key, and who wins a claim: one rule for every backend.

A record is ``in_progress`` (someone claimed it; the claim holds until ``lease_until``) or
``done`` (delivered; remembered until ``expires_at``). A claim wins when no record exists,
the record expired, or its in-progress lease ran out. Expiry is always checked here, never
left to the store's TTL sweep, which may lag by a day (Firestore) or hours (DynamoDB).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from fs2split.stores.dedup import Claim

IN_PROGRESS = "in_progress"
DONE = "done"
# Grace past the retry budget: the FullStory lookup, the store round trips and the answer itself.
LEASE_MARGIN_S = 5.0


class StoreError(Exception):
    """The shared store did not answer usably. The message is one line without secrets."""


def now_ms() -> int:
    return int(time.time() * 1000)


def new_owner() -> str:
    """A token naming one claim, so release() never deletes a claim someone else took over."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Record:
    status: str
    expires_at_ms: int
    lease_until_ms: int
    owner: str = ""

    def blocks(self, at_ms: int) -> Claim | None:
        """What a claim at ``at_ms`` hears from this record, or None when the claim may take it over."""
        if self.expires_at_ms <= at_ms:
            return None
        if self.status == DONE:
            return Claim.DONE
        if self.status == IN_PROGRESS and self.lease_until_ms > at_ms:
            return Claim.IN_FLIGHT
        return None  # an in-progress lease that ran out, or a status this version does not know


@dataclass(frozen=True)
class Windows:
    """How long records live: the claim's lease, and the dedup window of a done record."""

    lease_s: float
    done_s: float

    def claim_record(self, owner: str, at_ms: int, lease_s: float | None = None) -> Record:
        lease_ms = int((self.lease_s if lease_s is None else lease_s) * 1000)
        # The in-progress record expires with its lease: nothing lingers after a crash.
        return Record(IN_PROGRESS, at_ms + lease_ms, at_ms + lease_ms, owner)

    def done_record(self, owner: str, at_ms: int) -> Record:
        return Record(DONE, at_ms + int(self.done_s * 1000), at_ms, owner)
