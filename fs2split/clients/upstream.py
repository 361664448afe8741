"""Outbound HTTP: one pooled session per instance, retries inside a time budget.

Retries use urllib3's ``Retry`` (429, 5xx, connection errors, read timeouts; ``Retry-After``
honoured) with two additions: exponential backoff with jitter from the first retry, and a
deadline shared by every call made while serving one request, so the sender hears an answer
before it gives up. The deadline lives in a context variable set by ``budget()``.
"""

from __future__ import annotations

import contextvars
import json
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from fs2split import __version__

USER_AGENT = f"fs2split/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A retry is only worth starting if this much time is left for the attempt itself.
_ATTEMPT_FLOOR_S = 0.5

# Our own generator: jitter from background threads must not disturb the global one an
# application (or a property-based test) relies on.
_jitter = random.Random()  # noqa: S311 - backoff jitter, not crypto

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("fs2split_deadline", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Every upstream call inside this block, retries included, ends within ``seconds``."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def encode_json(value: Any) -> bytes:
    """The exact bytes ``request(json_body=value)`` sends, so a caller can derive a key from them."""
    return json.dumps(value, separators=(",", ":")).encode()


def remaining() -> float | None:
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


class BudgetRetry(Retry):
    """urllib3 Retry that backs off with jitter and never sleeps past the request's deadline."""

    def _ceiling(self) -> float:
        attempts = len(self.history)
        return 0.0 if attempts == 0 else min(self.backoff_max, self.backoff_factor * 2 ** (attempts - 1))

    def get_backoff_time(self) -> float:
        ceiling = self._ceiling()
        return ceiling / 2 + _jitter.uniform(0, ceiling / 2)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):  # type: ignore[no-untyped-def, override]
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        left = remaining()
        if left is not None:
            # The shortest wait the next try could need: Retry-After, or the jitter's floor.
            wait = (new.get_retry_after(response) if response is not None else None) or new._ceiling() / 2
            if wait + _ATTEMPT_FLOOR_S > left:
                reason = error or ResponseError(f"time budget: {max(left, 0):.1f}s left, next try needs {wait:.1f}s")
                raise MaxRetryError(_pool, url, reason) from reason  # type: ignore[arg-type]
        return new

    def sleep(self, response=None) -> None:  # type: ignore[no-untyped-def]
        wait = (self.get_retry_after(response) if response is not None else None) or self.get_backoff_time()
        left = remaining()
        if left is not None:
            wait = min(wait, max(0.0, left - _ATTEMPT_FLOOR_S))
        if wait > 0:
            time.sleep(wait)


@dataclass(frozen=True)
class Reply:
    """An upstream answer, or its absence (``status == 0``) after all retries."""

    status: int
    data: Any = None
    text: str = ""
    retry_after: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status in RETRY_STATUSES

    def describe(self) -> str:
        """One line for logs and responses: the upstream's own message, never our request."""
        if self.status == 0:
            return self.error or "no answer"
        message = self.data.get("message") if isinstance(self.data, dict) else None
        return f"HTTP {self.status}: {message or self.text or 'no body'}"[:300]


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
    ) -> None:
        self._timeouts = (connect_timeout_s, read_timeout_s)
        retry = BudgetRetry(
            total=max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # POSTs too: FME documents no idempotency, so at-least-once
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        self.session = requests.Session()
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
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
    ) -> Reply:
        """``data`` is a body already encoded as JSON (see ``encode_json``); else ``json_body`` is encoded."""
        left = remaining()
        connect, read = self._timeouts
        if left is not None:
            if left <= 0:
                return Reply(0, error="time budget exhausted before the call")
            read = max(0.1, min(read, left))
        if data is None and json_body is not None:
            data = encode_json(json_body)
        send_headers = {**self.session.headers, **headers}
        if data is not None:
            send_headers["Content-Type"] = "application/json"
        try:
            # Straight to the adapter (pool + retries), not Session.request: that walks os.environ for
            # proxy settings on every call and adds cookie and hook machinery fs2split does not use;
            # together ~1 ms a call, more than fs2split's own work per event.
            prepared = requests.PreparedRequest()
            prepared.prepare(method=method, url=url, headers=send_headers, data=data)
            response = self._adapter.send(prepared, timeout=(connect, read), **self._environment(url))
            response.content  # read it all now, so the connection goes back to the pool  # noqa: B018
        except requests.RequestException as error:
            return Reply(0, error=_describe_error(error))
        return Reply(
            status=response.status_code,
            data=_json_or_none(response),
            text=response.text[:300] if not response.ok else "",
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )

    def _environment(self, url: str) -> dict[str, Any]:
        origin = "/".join(url.split("/", 3)[:3])
        settings = self._env_settings.get(origin)
        if settings is None:
            settings = self.session.merge_environment_settings(url, {}, None, None, None)
            self._env_settings[origin] = settings
        return settings

    def close(self) -> None:
        self.session.close()


def _describe_error(error: requests.RequestException) -> str:
    # The class name says what failed (ConnectionError, ReadTimeout, RetryError) without
    # echoing the request, whose headers carry keys.
    cause = error.args[0] if error.args else None
    detail = type(getattr(cause, "reason", None)).__name__ if cause is not None else ""
    return f"{type(error).__name__}{f' ({detail})' if detail and detail != 'NoneType' else ''}"


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
