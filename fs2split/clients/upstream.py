"""Outbound HTTP: one pooled session per instance, retries inside a time budget.

Retries are a loop here rather than urllib3's ``Retry``, because each attempt needs its own timeouts:
connect and read are cut to what is left of the request's budget (``fs2split.deadline``), and so is the
total time spent reading a slowly dripping answer. urllib3 applies one timeout to every retry of a call.

What is retried inside a request: an answer that says "again soon" (``statuses.RETRY_NOW``: 429, 5xx, …)
and a connection that broke before an answer (refused, reset, a pooled keep-alive connection the server had
closed, a connect timeout). A read timeout is retried only where the call is safe to repeat (a GET, a POST
with an idempotency key): FME's events API does not deduplicate, so after a read timeout, when FME may
still be storing the events, the request ends and the sender's retry decides.
"""

from __future__ import annotations

import json
import math
import random
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error

from fs2split import __version__
from fs2split.clients.scrub import scrub
from fs2split.clients.statuses import RETRY_NOW, Verdict, classify
from fs2split.deadline import budget, remaining

__all__ = ["Reply", "Upstream", "budget", "remaining"]

USER_AGENT = f"fs2split/{__version__}"
RETRY_STATUSES = RETRY_NOW
# A retry is only worth starting if this much time is left for the attempt itself.
_ATTEMPT_FLOOR_S = 0.5
# Retry-After from an upstream is believed only within these bounds.
RETRY_AFTER_MIN_S = 1.0
RETRY_AFTER_MAX_S = 3600.0
# FME and FullStory answer a few kilobytes; anything longer is not the expected document.
_MAX_ANSWER_BYTES = 1024 * 1024
_CHUNK = 16 * 1024

# Our own generator: jitter from background threads must not disturb the global one an
# application (or a property-based test) relies on.
_jitter = random.Random()  # noqa: S311 - backoff jitter, not crypto

def encode_json(value: Any) -> bytes:
    """The exact bytes ``request(json_body=value)`` sends, so a caller can derive a key from them."""
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Reply:
    """An upstream answer, or its absence (``status == 0``) after all retries.

    ``detail`` is the upstream's own message, already scrubbed (see ``scrub``): the only upstream text
    that may reach a response or a log line.
    """

    status: int
    data: Any = None
    detail: str = ""
    retry_after: float | None = None
    error: str | None = None
    # The last attempt timed out while reading: the upstream may have acted on the request.
    read_timed_out: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def verdict(self) -> Verdict:
        return classify(self.status)

    @property
    def transient(self) -> bool:
        return self.verdict is Verdict.RETRY_LATER

    def describe(self) -> str:
        """One line for logs and responses: the upstream's own message, never our request."""
        if self.status == 0:
            return self.error or "no answer"
        return f"HTTP {self.status}: {self.detail or 'no body'}"


class _Broken(Exception):
    """An attempt without an answer; ``retry`` says whether another attempt is safe."""

    def __init__(self, description: str, *, retry: bool, read_timeout: bool = False) -> None:
        super().__init__(description)
        self.description = description
        self.retry = retry
        self.read_timeout = read_timeout


class Upstream:
    """The one HTTP session of an instance, reused across warm invocations."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        pool_size: int = 32,
        max_retries: int = 5,
        backoff_factor: float = 0.25,
        backoff_max: float = 4.0,
        secrets: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._max_retries = max_retries
        self._backoff = (backoff_factor, backoff_max)
        # Every secret value the instance holds, asked for each time an upstream's text is kept.
        self.secrets = secrets
        self.session = requests.Session()
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", self._adapter)
        self.session.mount("http://", self._adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        # Per origin: proxies, no_proxy and CA bundle from the environment, read once (see request()).
        self._env_settings: dict[str, dict[str, Any]] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json_body: Any = None,
        data: bytes | None = None,
        repeatable: bool | None = None,
    ) -> Reply:
        """``data`` is a body already encoded as JSON (see ``encode_json``); else ``json_body`` is encoded.
        ``repeatable``: whether the call may be sent again after a read timeout (default: GETs only)."""
        repeatable = method.upper() in ("GET", "HEAD") if repeatable is None else repeatable
        if data is None and json_body is not None:
            data = encode_json(json_body)
        send_headers = {**self.session.headers, **headers}
        if data is not None:
            send_headers["Content-Type"] = "application/json"
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=send_headers, data=data)
        retries = 0
        while True:
            left = remaining()
            if left is not None and left <= 0.05:
                return Reply(0, error="time budget exhausted before an answer")
            try:
                reply = self._attempt(prepared, url, left)
            except _Broken as broken:
                wait = self._backoff_s(retries + 1)
                if not broken.retry or (not repeatable and broken.read_timeout) or not self._may_retry(retries, wait):
                    return Reply(0, error=broken.description, read_timed_out=broken.read_timeout)
            else:
                if reply.status not in RETRY_NOW:
                    return reply
                wait = reply.retry_after if reply.retry_after is not None else self._backoff_s(retries + 1)
                if not self._may_retry(retries, wait):
                    return reply
            retries += 1
            if wait > 0:
                time.sleep(wait)

    def _may_retry(self, retries: int, wait: float) -> bool:
        left = remaining()
        return retries < self._max_retries and (left is None or wait + _ATTEMPT_FLOOR_S <= left)

    def _backoff_s(self, retry: int) -> float:
        factor, ceiling_max = self._backoff
        ceiling = min(ceiling_max, factor * 2 ** (retry - 1))
        return ceiling / 2 + _jitter.uniform(0, ceiling / 2)

    def _attempt(self, prepared: requests.PreparedRequest, url: str, left: float | None) -> Reply:
        connect, read = self._timeouts
        deadline = None if left is None else time.monotonic() + left
        if left is not None:
            connect, read = max(0.05, min(connect, left)), max(0.05, min(read, left))
        try:
            # Straight to the adapter (the pool), not Session.request: that walks os.environ for proxy
            # settings on every call and adds cookie and hook machinery fs2split does not use; together
            # ~1 ms a call, more than fs2split's own work per event.
            # stream: the body is read here, chunk by chunk, against the deadline and a size cap.
            settings = {**self._environment(url), "stream": True}
            response = self._adapter.send(prepared.copy(), timeout=(connect, read), **settings)
        except requests.exceptions.ReadTimeout:
            raise _Broken("ReadTimeout", retry=True, read_timeout=True) from None
        except requests.RequestException as error:
            # Refused, reset, a closed pooled connection, a connect timeout: nothing was answered.
            raise _Broken(_describe_error(error), retry=True) from None
        try:
            body = _read_body(response, deadline, read)
        finally:
            response.close()
        status = response.status_code
        ok = 200 <= status < 300
        data = _json_or_none(body)
        detail = "" if ok else scrub(_message(data) or body.decode("utf-8", "replace"), self.secrets())
        return Reply(status=status, data=data, detail=detail, retry_after=retry_after_s(response.headers))

    def _environment(self, url: str) -> dict[str, Any]:
        origin = "/".join(url.split("/", 3)[:3])
        settings = self._env_settings.get(origin)
        if settings is None:
            settings = self.session.merge_environment_settings(url, {}, None, None, None)
            self._env_settings[origin] = settings
        return settings

    def close(self) -> None:
        self.session.close()


def _read_body(response: requests.Response, deadline: float | None, read_s: float) -> bytes:
    """The whole answer, read before the deadline and within ``_MAX_ANSWER_BYTES``."""
    raw = response.raw
    chunks = bytearray()
    sock = _socket(raw)
    try:
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Broken(
                        "the answer was still arriving when the time budget ran out", retry=False, read_timeout=True
                    )
                if sock is not None:
                    # Each recv waits no longer than what is left: a dripping answer cannot outlast the budget.
                    sock.settimeout(max(0.01, min(read_s, left)))
            chunk = raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                return bytes(chunks)
            chunks += chunk
            if len(chunks) > _MAX_ANSWER_BYTES:
                raise _Broken(f"the answer is longer than {_MAX_ANSWER_BYTES} bytes", retry=False)
    except (Urllib3Error, OSError, requests.RequestException) as error:
        timed_out = isinstance(error, TimeoutError | socket.timeout) or "timed out" in str(error).lower()
        # The answer had started: the upstream acted on the request. A broken answer is not retried here.
        raise _Broken(f"the answer broke off ({type(error).__name__})", retry=False, read_timeout=timed_out) from None


def _socket(raw: Any) -> socket.socket | None:
    # urllib3 2.x exposes the connection of an unreleased response; its sock is the one being read.
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _describe_error(error: requests.RequestException) -> str:
    # The class name says what failed (ConnectionError, ReadTimeout) without echoing the request,
    # whose headers carry keys.
    cause = error.args[0] if error.args else None
    detail = type(getattr(cause, "reason", None)).__name__ if cause is not None else ""
    return f"{type(error).__name__}{f' ({detail})' if detail and detail != 'NoneType' else ''}"


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _message(data: Any) -> str | None:
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) and message else None


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), clamped to 1 to 3,600; None if absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime  # rare: most upstreams send seconds

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(RETRY_AFTER_MAX_S, max(RETRY_AFTER_MIN_S, seconds))
