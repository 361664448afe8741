"""Cloud Functions / functions-framework: a Flask request in, a (body, status, headers) tuple out.

Flask is never imported here: the request object is used through its documented attributes.
"""

from __future__ import annotations

import time
from typing import Any

from fs2split.app import handle, respond
from fs2split.http_types import Request
from fs2split.instance import current
from fs2split.outcome import Outcome, Reason


def serve(flask_request: Any) -> tuple[bytes, int, dict[str, str]]:
    started = time.perf_counter()
    limit = current().settings.max_request_bytes
    declared = flask_request.content_length
    if declared is not None and declared > limit:
        # Refuse before reading: the body may be a gigabyte.
        outcome = Outcome(Reason.PAYLOAD_TOO_LARGE, f"the body is larger than {limit} bytes")
        response = respond(flask_request.method, flask_request.path, outcome, started=started)
    else:
        # Read one byte past the largest limit, so the route can tell "too large" from "at the limit".
        body = flask_request.stream.read(limit + 1)
        response = handle(
            Request(
                method=flask_request.method,
                path=flask_request.path,
                headers={name.lower(): value for name, value in flask_request.headers.items()},
                query=dict(flask_request.args.items()),
                body=body,
            )
        )
    return response.body_bytes(), response.status, response.all_headers()
