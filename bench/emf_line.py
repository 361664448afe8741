"""EMF line cost: what the CloudWatch Embedded Metric Format block adds to a request's log line.

The same delivered outcome goes through ``app.respond`` (the code that writes every request's line) for an
instance with ``FS2SPLIT_METRICS=emf`` and one with ``off``, in alternating batches, with the JSON line
written to /dev/null. The block's constant part is built once per configuration, so a line only adds its
timestamp and the serialised block.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from bench.common import Metric, median

BATCHES = 15


def _per_line_us(respond: object, instance: object, outcome: object, lines: int) -> float:
    started = time.perf_counter()
    for _ in range(lines):
        respond("POST", "/fullstory", outcome, route="fullstory", started=started, instance=instance)  # type: ignore[operator]
    return (time.perf_counter() - started) / lines * 1e6


def run(lines: int) -> list[Metric]:
    from fs2split.app import respond
    from fs2split.instance import Instance
    from fs2split.outcome import Outcome, Reason

    with_block = Instance.from_env({"FS2SPLIT_METRICS": "emf"}, mapping_dir=None)
    without = Instance.from_env({"FS2SPLIT_METRICS": "off"}, mapping_dir=None)
    outcome = Outcome(
        Reason.DELIVERED,
        "sent to FME",
        log={"event_type": "checkout_completed", "lookup": "cache", "events_sent": 1, "properties": 4},
    )
    plain: list[float] = []
    emf: list[float] = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for batch in range(BATCHES):
            # Swap who goes first each batch, so a GC pause or a frequency change is shared.
            if batch % 2:
                emf.append(_per_line_us(respond, with_block, outcome, lines))
                plain.append(_per_line_us(respond, without, outcome, lines))
            else:
                plain.append(_per_line_us(respond, without, outcome, lines))
                emf.append(_per_line_us(respond, with_block, outcome, lines))
    with_block.upstream.close()
    without.upstream.close()
    print(f"bench: emf line {median(emf):.2f} µs, plain {median(plain):.2f} µs", file=sys.stderr)
    added = max(0.0, median(emf) - median(plain))
    return [
        Metric("emf.line_us", "A request's log line (respond), without the EMF block", median(plain), " µs"),
        Metric("emf.line_with_block_us", "The same line with the EMF block", median(emf), " µs"),
        Metric("emf.added_us", "What the EMF block adds to a line", added, " µs", "<=", 5.0),
    ]
