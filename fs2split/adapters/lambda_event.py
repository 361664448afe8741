"""AWS Lambda: Function URL and API Gateway HTTP API events (payload 2.0) and REST API proxy
events (payload 1.0) in, the proxy response dict out."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from fs2split.app import handle, respond
from fs2split.http_types import Request, Response
from fs2split.instance import current
from fs2split.outcome import Outcome, Reason


def serve(event: Any) -> dict[str, Any]:
    started = time.perf_counter()
    if not isinstance(event, Mapping):
        return _proxy(respond("?", "/", Outcome(Reason.NOT_A_WEBHOOK, "not an HTTP event"), started=started))
    method, path = _method_and_path(event)
    if not method:
        outcome = Outcome(Reason.NOT_A_WEBHOOK, "not an HTTP event (Function URL, HTTP API or REST API proxy)")
        return _proxy(respond("?", path, outcome, started=started))
    too_large = _too_large(event)
    if too_large is not None:
        return _proxy(respond(method, path, Outcome(Reason.PAYLOAD_TOO_LARGE, too_large), started=started))
    body = _body(event)
    if body is None:
        outcome = Outcome(Reason.INVALID_JSON, "the body is marked base64 but is not valid base64")
        return _proxy(respond(method, path, outcome, started=started))
    request = Request(method=method, path=path, headers=_headers(event), query=_query(event), body=body)
    return _proxy(handle(request))


def _method_and_path(event: Mapping[str, Any]) -> tuple[str, str]:
    context = event.get("requestContext") if isinstance(event.get("requestContext"), Mapping) else {}
    http = context.get("http") if isinstance(context.get("http"), Mapping) else None
    if http is not None:  # payload 2.0
        method, path = http.get("method"), event.get("rawPath") or http.get("path")
    else:  # payload 1.0
        method, path = event.get("httpMethod"), event.get("path")
    path = path if isinstance(path, str) and path else "/"
    stage = context.get("stage")
    # API Gateway keeps a named stage in the path (/prod/fullstory); $default has none.
    if isinstance(stage, str) and stage and stage != "$default":
        prefix = f"/{stage}"
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) :] or "/"
    return (method.upper() if isinstance(method, str) else ""), path


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            if isinstance(values, list) and values:
                headers[str(name).lower()] = ",".join(str(v) for v in values)
    single = event.get("headers")
    if isinstance(single, Mapping):
        for name, value in single.items():
            if value is not None:
                headers.setdefault(str(name).lower(), str(value))
    return headers


def _query(event: Mapping[str, Any]) -> dict[str, str]:
    raw = event.get("rawQueryString")
    if isinstance(raw, str) and raw:
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw, keep_blank_values=True):
            query.setdefault(name, value)
        return query
    params = event.get("queryStringParameters")
    if isinstance(params, Mapping):
        return {str(k): str(v) for k, v in params.items() if v is not None}
    return {}


def _too_large(event: Mapping[str, Any]) -> str | None:
    """Refuse an oversized body from its length alone, before decoding it into a second copy."""
    body = event.get("body")
    if not isinstance(body, str):
        return None
    limit = current().settings.max_request_bytes
    # A str of n characters is at least n UTF-8 bytes; base64 of n bytes is at least 4 * n / 3 characters.
    smallest = len(body) * 3 // 4 - 2 if event.get("isBase64Encoded") else len(body)
    return f"the body is larger than {limit} bytes" if smallest > limit else None


def _body(event: Mapping[str, Any]) -> bytes | None:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        return None
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return body.encode("utf-8", errors="surrogatepass")


def _proxy(response: Response) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": response.all_headers(),
        "body": response.body_bytes().decode(),
        "isBase64Encoded": False,
    }
