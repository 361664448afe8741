"""Cloud Functions / functions-framework: a Flask request in, a (body, status, headers) tuple out.

Flask is never imported here: the request object is used through its documented attributes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fs2split.app import handle, respond
from fs2split.http_types import Request, Response
from fs2split.instance import current
from fs2split.outcome import Outcome, Reason


def serve(flask_request: Any) -> tuple[bytes | Iterator[bytes], int, dict[str, str]]:
    started = time.perf_counter()
    limit = current().settings.max_request_bytes
    declared = flask_request.content_length
    # Read one byte past the largest limit, so "too large" is told from "at the limit", and never more:
    # a body without Content-Length (chunked) is bounded here too.
    body = b"" if declared is not None and declared > limit else flask_request.stream.read(limit + 1)
    if (declared is not None and declared > limit) or len(body) > limit:
        outcome = Outcome(Reason.PAYLOAD_TOO_LARGE, f"the body is larger than {limit} bytes")
        return _unread_rest(respond(flask_request.method, flask_request.path, outcome, started=started))
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


def _unread_rest(response: Response) -> tuple[Iterator[bytes], int, dict[str, str]]:
    """The refusal as a streamed response, so the rest of the body is never read into memory.

    functions-framework reads the whole request in an ``after_request`` hook (``read_request``: "skipped on
    streaming responses", as its docstring promises), which is what held a 1 GiB body in memory before the
    413 went out. A response whose body is an iterator is a streaming response to Flask (``is_streamed``),
    so that hook leaves the body alone and the server discards or drops the connection.

    Flask's public ``MAX_CONTENT_LENGTH`` / ``request.max_content_length`` does not serve here: with it set,
    the hook's own ``get_data()`` raises ``RequestEntityTooLarge`` inside ``after_request``, which Flask turns
    into its HTML 500 and the JSON 413 is lost (tried with functions-framework 3.x and Flask 3.1).
    """
    return iter((response.body_bytes(),)), response.status, response.all_headers()
