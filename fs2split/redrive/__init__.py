"""Moving dead-lettered messages back to the queue the drain reads: ``python -m fs2split redrive``.

One module per queue engine (``sqs``, ``pubsub``); both keep one rule: a message leaves the dead-letter
queue only after the main queue accepted its copy. A crash between the two can leave a message in both,
so the drain may see it twice; the drain's dedup absorbs that.
"""

from __future__ import annotations

from dataclasses import dataclass


class RedriveError(RuntimeError):
    """Redrive cannot go on; the message is one line, scrubbed of upstream text and secrets."""


@dataclass(frozen=True)
class RedriveResult:
    # Where the dead letters were found, for the operator: a queue URL or a subscription name.
    dead_letters: str
    moved: int
    # True when only counted (--dry-run); ``moved`` is then the count.
    dry_run: bool = False
    # How the messages moved: ``message-move-task``, ``receive-send-delete``, ``pull-publish-ack``.
    method: str = ""
    # Set when the run stopped early: what moved so far stayed moved, the rest stays dead-lettered.
    error: str | None = None
    # SQS counts are approximate (ApproximateNumberOfMessages): said so in the output.
    approximate: bool = False
