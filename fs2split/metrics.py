"""Metrics carried by the log line itself: an outcome class for every cloud, and on AWS a CloudWatch
Embedded Metric Format (EMF) ``_aws`` block, which CloudWatch Logs turns into metrics with no API call.

Only low-cardinality values become dimensions (the route and the outcome class), never a user id or
anything a sender controls. The block's constant part is built once per (mode, namespace); a line only
adds its timestamp, so the block costs a few microseconds (``bench/emf_line.py``).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import Any

from fs2split.logs import RawJson

DEFAULT_NAMESPACE = "fs2split"

# The reason's class, a dimension with exactly five values (issue 18's contract). Queue mode's 200 ``queued``
# is "any other 2xx", so ``dropped``: what reached FME or FullStory is the drain's ``events_sent``.
DELIVERED, DROPPED, REFUSED, RETRY, ERROR = "delivered", "dropped", "refused", "retry", "error"
OUTCOME_CLASSES = (DELIVERED, DROPPED, REFUSED, RETRY, ERROR)

# Every metric name the code emits, with its CloudWatch unit: dashboards and alarms may name only these
# (tests/infra/test_monitoring.py checks the Terraform against this table).
REQUEST_METRICS: Mapping[str, str] = {"requests": "Count", "latency_ms": "Milliseconds", "events_sent": "Count"}
DRAIN_METRICS: Mapping[str, str] = {
    "messages": "Count",
    "events_sent": "Count",
    "failed": "Count",
    "oldest_message_age_s": "Seconds",
}
DRAIN_ROUTE = "drain"


def outcome_class(reason: str, status: int) -> str:
    """What the sender heard, in five words: ``delivered``, ``dropped`` (any other 2xx), ``refused``
    (4xx but 429), ``retry`` (429, 503) or ``error`` (other 5xx)."""
    if reason == "delivered":
        return DELIVERED
    if status < 300:
        return DROPPED
    if status in (429, 503):
        return RETRY
    return REFUSED if status < 500 else ERROR


class LineMetrics:
    """The fields one log line adds for metrics. Immutable after construction; shared by all threads."""

    def __init__(self, *, emf: bool, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.emf = emf
        self.namespace = namespace
        by_route = [["route", "outcome"], ["outcome"]]
        # Lines without a route (an adapter refusing a non-HTTP event) keep the totals only: a dimension
        # named in the block must be present in the line, or CloudWatch rejects the whole block.
        no_route = [["outcome"]]
        self._directives = {
            (True, False): self._directive(by_route, ("requests", "latency_ms")),
            (True, True): self._directive(by_route, ("requests", "latency_ms", "events_sent")),
            (False, False): self._directive(no_route, ("requests", "latency_ms")),
            (False, True): self._directive(no_route, ("requests", "latency_ms", "events_sent")),
        }
        self._drain = self._directive([["route"]], tuple(DRAIN_METRICS), units=DRAIN_METRICS)
        # The block as JSON text around its one varying member, so a line never re-serialises the rest.
        self._tails = {key: _tail(directive) for key, directive in self._directives.items()}
        self._drain_tail = _tail(self._drain)

    def _directive(
        self, dimensions: list[list[str]], names: tuple[str, ...], units: Mapping[str, str] = REQUEST_METRICS
    ) -> list[dict[str, Any]]:
        metrics = [{"Name": name, "Unit": units[name]} for name in names]
        return [{"Namespace": self.namespace, "Dimensions": dimensions, "Metrics": metrics}]

    def for_request(self, *, route: str | None, reason: str, status: int, events_sent: bool) -> dict[str, Any]:
        """``outcome`` always (Cloud Logging's log-based metrics label by it); ``requests`` and the
        ``_aws`` block only when EMF is on. ``latency_ms`` and ``events_sent`` are already in the line."""
        fields: dict[str, Any] = {"outcome": outcome_class(reason, status)}
        if self.emf:
            fields["requests"] = 1
            fields["_aws"] = RawJson(
                f'{{"Timestamp": {int(time.time() * 1000)}{self._tails[(route is not None, events_sent)]}'
            )
        return fields

    def for_drain(self, *, messages: int, events_sent: int, failed: int, oldest_message_age_s: float) -> dict[str, Any]:
        """The fields of the drain's one run line (``route`` = ``drain``), with the EMF block when on."""
        fields: dict[str, Any] = {
            "route": DRAIN_ROUTE,
            "messages": messages,
            "events_sent": events_sent,
            "failed": failed,
            "oldest_message_age_s": round(max(0.0, oldest_message_age_s), 3),
        }
        if self.emf:
            fields["_aws"] = RawJson(f'{{"Timestamp": {int(time.time() * 1000)}{self._drain_tail}')
        return fields


def _tail(directives: list[dict[str, Any]]) -> str:
    return f', "CloudWatchMetrics": {json.dumps(directives, ensure_ascii=False)}}}'


@functools.lru_cache(maxsize=8)
def line_metrics(emf: bool, namespace: str) -> LineMetrics:
    """One ``LineMetrics`` per configuration, built on the first line that needs it."""
    return LineMetrics(emf=emf, namespace=namespace)
