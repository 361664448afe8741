"""``python -m fs2split redrive [--dry-run]``: move dead-lettered messages back to the queue the drain reads.

The queue comes from the queue-mode settings: ``FS2SPLIT_QUEUE_URL`` (SQS) or ``FS2SPLIT_PUBSUB_TOPIC``
with ``FS2SPLIT_PUBSUB_SUBSCRIPTION`` (Pub/Sub). The dead-letter queue is found from them. Exit status 0
when every dead letter moved (or was counted), 1 when the run stopped early (what moved stays moved, the
rest stays dead-lettered), 2 when no queue is configured.
"""

from __future__ import annotations

import argparse
import os
import sys

NAME = "redrive"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        NAME,
        help="move dead-lettered messages back to the queue (queue mode)",
        description="Move dead-lettered messages back to the queue named by FS2SPLIT_QUEUE_URL (SQS) or "
        "FS2SPLIT_PUBSUB_TOPIC (Pub/Sub). A message leaves the dead-letter queue only after it was re-sent.",
    )
    command.add_argument("--dry-run", action="store_true", help="only count the dead-lettered messages")
    command.add_argument(
        "--timeout", type=float, default=120.0, metavar="SECONDS", help="stop after this long (default 120)"
    )


def run(arguments: argparse.Namespace) -> int:
    from fs2split.redrive import RedriveError, RedriveResult

    queue_url = os.environ.get("FS2SPLIT_QUEUE_URL", "").strip()
    topic = os.environ.get("FS2SPLIT_PUBSUB_TOPIC", "").strip()
    if not queue_url and not topic:
        print("no queue: set FS2SPLIT_QUEUE_URL (SQS) or FS2SPLIT_PUBSUB_TOPIC (Pub/Sub)", file=sys.stderr)
        return 2
    timeout = max(1.0, float(arguments.timeout))
    try:
        result: RedriveResult
        if queue_url:
            from fs2split.redrive import sqs

            result = sqs.redrive(queue_url, dry_run=arguments.dry_run, timeout_s=timeout)
        else:
            from fs2split.redrive import pubsub

            result = pubsub.redrive(
                topic,
                os.environ.get("FS2SPLIT_PUBSUB_SUBSCRIPTION", "").strip() or None,
                dead_letter_subscription=os.environ.get("FS2SPLIT_PUBSUB_DEAD_LETTER_SUBSCRIPTION", "").strip() or None,
                dry_run=arguments.dry_run,
                timeout_s=timeout,
            )
    except RedriveError as error:
        print(f"redrive failed: {error}", file=sys.stderr)
        return 1
    about = "about " if result.approximate else ""
    if result.dry_run:
        print(f"{about}{result.moved} dead-lettered message(s) in {result.dead_letters}; nothing moved (dry run)")
        return 0
    print(f"moved {about}{result.moved} message(s) from {result.dead_letters} ({result.method})")
    if result.error:
        print(f"redrive stopped early: {result.error}", file=sys.stderr)
        return 1
    return 0
