"""The router every entry point calls: one portable request in, one response out, one log line."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fs2split import logs, metrics
from fs2split.deadline import budget
from fs2split.http_types import Request, Response
from fs2split.instance import Instance, current
from fs2split.outcome import Outcome, Reason


@dataclass(frozen=True)
class _Route:
    name: str
    methods: frozenset[str]
    # The module whose ``handle`` serves the route, imported on the route's first request: a function
    # that only ever receives FullStory webhooks never loads the impressions side.
    module: str

    @property
    def handler(self) -> Callable[[Request, Instance], Outcome]:
        return importlib.import_module(self.module).handle  # type: ignore[no-any-return]


_RETRY_AFTER_MAX_S = 3600
_FULLSTORY = _Route("fullstory", frozenset({"POST"}), "fs2split.events.route")
_ROUTES: dict[str, _Route] = {
    "/": _FULLSTORY,
    "/fullstory": _FULLSTORY,
    "/split/impressions": _Route("split_impressions", frozenset({"POST"}), "fs2split.impressions.route"),
    "/healthz": _Route("healthz", frozenset({"GET", "HEAD"}), "fs2split.health"),
}

_ROUTE_LIST = "POST /fullstory (or /), POST /split/impressions, GET /healthz"


def handle(request: Request, instance: Instance | None = None) -> Response:
    """Serve one request. Never raises: a bug becomes a 500 with a generic message and a log line."""
    started = time.perf_counter()
    instance = instance or current()
    path = _normalise(request.path)
    route = _ROUTES.get(path)
    if route is None:
        outcome = Outcome(Reason.NOT_FOUND, f"no route {path[:100]!r}; the routes are {_ROUTE_LIST}")
    elif request.method.upper() not in route.methods:
        allowed = ", ".join(sorted(route.methods))
        outcome = Outcome(Reason.METHOD_NOT_ALLOWED, f"{route.name} takes {allowed}", headers={"Allow": allowed})
    else:
        try:
            # One budget for the whole request, secret fetches included; the routes' own never extend it.
            with budget(instance.settings.retry_budget_s):
                outcome = route.handler(request, instance)
        except Exception:
            logging.getLogger(logs.LOGGER_NAME).exception("unhandled error", extra={"fields": {"route": path}})
            outcome = Outcome(Reason.INTERNAL_ERROR, "internal error; see the function's logs")
    return respond(
        request.method, path, outcome, route=route.name if route else None, started=started, instance=instance
    )


def respond(
    method: str,
    path: str,
    outcome: Outcome,
    *,
    route: str | None = None,
    started: float | None = None,
    instance: Instance | None = None,
) -> Response:
    """Turn an outcome into the response, and write the request's one log line. Never raises."""
    try:
        return _respond(method, path, outcome, route, started, instance)
    except Exception:  # a bug here must still be a JSON answer, not the framework's HTML 500
        with contextlib.suppress(Exception):
            logging.getLogger(logs.LOGGER_NAME).exception("could not build the response")
        return Response(500, {"reason": Reason.INTERNAL_ERROR.value, "message": "internal error; see the logs"})


def _respond(
    method: str, path: str, outcome: Outcome, route: str | None, started: float | None, instance: Instance | None
) -> Response:
    headers = dict(outcome.headers)
    if outcome.retry_after is not None:
        headers["Retry-After"] = _retry_after_header(outcome.retry_after)
    status = outcome.status
    severity = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    settings = (instance or current()).settings
    line_metrics = metrics.line_metrics(settings.emf_metrics, settings.metrics_namespace)
    logs.emit(
        severity,
        f"{method} {path[:100]} -> {status} {outcome.reason.value}",
        route=route,
        method=method,
        status=status,
        reason=outcome.reason.value,
        detail=outcome.message if status >= 300 else None,
        latency_ms=round((time.perf_counter() - (started or time.perf_counter())) * 1000, 2),
        # Metrics last, so a route's own log fields never overwrite a metric dimension.
        **{
            **outcome.log,
            **line_metrics.for_request(
                route=route, reason=outcome.reason.value, status=status, events_sent="events_sent" in outcome.log
            ),
        },
    )
    return Response(
        status=status,
        body=_encodable({"reason": outcome.reason.value, "message": outcome.message, **outcome.body}),
        headers=headers,
    )


def _retry_after_header(seconds: float) -> str:
    # Whole seconds, 1 to 3,600: an upstream's "inf" or "1e400" must not become an OverflowError here.
    if not math.isfinite(seconds):
        return str(_RETRY_AFTER_MAX_S) if seconds > 0 else "1"
    return str(min(_RETRY_AFTER_MAX_S, max(1, math.ceil(seconds))))


def _encodable(body: dict[str, Any]) -> dict[str, Any]:
    """The body, with text no UTF-8 encoder accepts (lone surrogates from a sender or an upstream) replaced."""
    text = json.dumps(body, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.loads(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))  # type: ignore[no-any-return]
    return body


def _normalise(path: str) -> str:
    path = "/" + path.strip().strip("/")
    return path if len(path) <= 2048 else path[:2048]
