"""An impression listener for the FME Python SDK (``splitio_client``) that writes each evaluation into
FullStory as a ``split_evaluation`` event, so FullStory segments can be built per treatment.

Usage::

    from splitio import get_factory
    from fs2split.impressions.listener import FullStoryImpressionListener

    factory = get_factory(SDK_KEY, config={"impressionListener": FullStoryImpressionListener()})

The SDK calls ``log_impression`` synchronously in the evaluating thread, for every evaluation. So it
only validates, deduplicates and enqueues; background threads send. The queue is bounded: when full,
the oldest impression is dropped and counted. Nothing raises out of ``log_impression``.

Settings come from the environment (keyword arguments win): ``FULLSTORY_API_KEY`` (or
``FULLSTORY_API_KEY_SECRET``, a secret-manager reference), ``FULLSTORY_API_URL``,
``SPLIT_ENVIRONMENT_NAME``, ``FS2SPLIT_IMPRESSION_DEDUP_SECONDS``, ``FS2SPLIT_RETRY_BUDGET_SECONDS`` and the timeouts.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fs2split.clients.fullstory_api import FullStoryApi
from fs2split.clients.statuses import Verdict
from fs2split.clients.upstream import Reply, Upstream, budget
from fs2split.config.keys import FULLSTORY_API_KEY, Keys, SecretUnavailable
from fs2split.config.settings import Settings
from fs2split.impressions import event as impressions
from fs2split.impressions.event import Impression, Problem
from fs2split.logs import LOGGER_NAME
from fs2split.stores.dedup import Claim, MemoryDedupStore

__all__ = ["AsyncFullStoryImpressionListener", "FullStoryImpressionListener"]

_log = logging.getLogger(LOGGER_NAME)
# Transient failures are retried by re-queueing this many times in all, then dropped and counted.
_MAX_ATTEMPTS = 3
# After FullStory failed, the workers pause: Retry-After when given, else doubling up to the cap.
_PAUSE_MIN_S = 1.0
_PAUSE_MAX_S = 60.0
_REJECTED_PAUSE_S = 60.0
_LOG_EVERY_S = 60.0
_COUNTERS = (
    "received",  # log_impression calls
    "duplicates",  # already sent (or queued) within the dedup window: not sent again
    "queued",  # accepted into the queue
    "dropped",  # the queue was full: the oldest was dropped (or, at close, left unsent)
    "sent",  # accepted by FullStory
    "failed",  # FullStory unavailable after every attempt
    "rejected",  # refused by FullStory: a bad key (401/403) or an invalid event (4xx)
    "invalid",  # no key, flag or treatment: nothing to send
    "no_api_key",  # FULLSTORY_API_KEY not configured: nothing sent
    "errors",  # unexpected errors, swallowed so the evaluation is unaffected
)


@dataclass
class _Item:
    impression: Impression
    dedup_key: str
    attributes: dict[str, Any] | None
    attempts: int = 0


class FullStoryImpressionListener:
    """FME Python SDK impression listener that sends ``split_evaluation`` events to FullStory."""

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        environment_name: str | None = None,
        include_attributes: bool = False,
        dedup_seconds: float | None = None,
        max_queue: int = 10_000,
        workers: int = 2,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """
        :param api_key: FullStory API key; default ``FULLSTORY_API_KEY`` (or ``FULLSTORY_API_KEY_SECRET``).
        :param api_url: FullStory API base URL; default ``FULLSTORY_API_URL`` or https://api.fullstory.com.
        :param environment_name: the FME environment, sent as ``environmentName`` like the webhook does;
            default ``SPLIT_ENVIRONMENT_NAME``.
        :param include_attributes: also send the evaluation attributes. Off by default: they are often PII.
        :param dedup_seconds: send the same (key, flag, treatment, change number) once per this many
            seconds; default ``FS2SPLIT_IMPRESSION_DEDUP_SECONDS`` or 1800.
        :param max_queue: impressions waiting to be sent before the oldest are dropped.
        :param workers: threads sending to FullStory.
        :param env: the environment to read instead of ``os.environ``.
        :raises ValueError: a setting has a value that cannot be used (at construction, never later).
        """
        source = os.environ if env is None else env
        settings = Settings.from_env(source)
        if api_url is not None and not re.match(r"^https?://[^/\s]+", api_url.strip()):
            raise ValueError("api_url: must be an http(s) URL")
        if max_queue < 1 or workers < 1:
            raise ValueError("max_queue and workers must be at least 1")
        if dedup_seconds is not None and not dedup_seconds >= 0:
            raise ValueError("dedup_seconds: must be a number >= 0")
        self._api_url = (api_url.strip() if api_url else settings.fullstory_api_url).rstrip("/")
        self._api_key = api_key.strip() if api_key and api_key.strip() else None
        self._keys = Keys(source, legacy_dir=None)
        # The same body as the webhook's for the same evaluation, so both carry one Idempotency-Key.
        self._environment_name = environment_name or settings.split_environment_name
        self._include_attributes = include_attributes
        self._dedup_s = settings.impression_dedup_s if dedup_seconds is None else float(dedup_seconds)
        self._dedup_size = settings.dedup_size
        self._max_queue = max_queue
        self._workers = workers
        self._budget_s = settings.retry_budget_s
        self._timeouts = (settings.connect_timeout_s, settings.read_timeout_s)
        self._configured = self._api_key is not None or self._keys.configured(FULLSTORY_API_KEY)
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._last_log: dict[str, float] = {}
        self._closed = False
        self._reset_runtime()
        if not self._configured:
            _log.warning("FULLSTORY_API_KEY is not set: the FullStory impression listener sends nothing")
        _live.add(self)
        atexit.register(self._close_at_exit)

    # --- the SDK's interface -------------------------------------------------------------------------------

    def log_impression(self, data: Any) -> None:
        """Called by the SDK for every evaluation: enqueue and return. Never raises, never blocks on I/O."""
        try:
            self._accept(data)
        except Exception:
            with contextlib.suppress(Exception):
                self._count("errors")

    # --- lifecycle -----------------------------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued impression has been sent (or given up); True if that happened in time."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to ``timeout_s``), then stop the workers. Later impressions are ignored."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self._close_at_exit)
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            left = len(self._queue)
            for item in self._queue:
                self._seen.release(item.dedup_key)
            self._queue.clear()
            self._counts["dropped"] += left
            self._cond.notify_all()
        # One second for all: a worker stuck in a slow request is a daemon and will not hold up the exit.
        deadline = time.monotonic() + 1.0
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._upstream.close()
        if left:
            _log.warning("FullStory impression listener closed with %d impressions unsent", left)

    def stats(self) -> dict[str, int]:
        """Counters since construction, or since the fork in a forked child (see ``_COUNTERS``), plus the
        current queue length."""
        with self._cond:
            return {**self._counts, "queue": len(self._queue)}

    @property
    def dropped(self) -> int:
        with self._cond:
            return self._counts["dropped"]

    def __enter__(self) -> FullStoryImpressionListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------------------

    def _reset_runtime(self) -> None:
        """Locks, queue, workers and connections: built at construction and again in a forked child, where
        the parent's threads do not exist and its locks may be held forever."""
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._busy = 0
        self._stopping = False
        self._resume_at = 0.0
        self._failures = 0
        self._threads: list[threading.Thread] = []
        self._seen = MemoryDedupStore(ttl_s=self._dedup_s, max_size=self._dedup_size)
        connect, read = self._timeouts
        self._upstream = Upstream(
            connect_timeout_s=connect, read_timeout_s=read, pool_size=self._workers, secrets=self._secret_values
        )

    def _accept(self, data: Any) -> None:
        if self._closed:
            return
        if not self._configured:
            self._count("received", "no_api_key")
            return
        if not isinstance(data, Mapping):
            self._count("received", "invalid")
            return
        raw = data.get("impression")
        # Most evaluations repeat one already sent: recognise them from the SDK's own fields, before any
        # validation or hashing. The separator cannot occur in a digest, so the two key forms never meet.
        key = _fast_key(raw)
        if key is not None and self._seen.claim(key) is not Claim.NEW:
            self._count("received", "duplicates")
            return
        impression = impressions.from_sdk(raw, data.get("sdk-language-version"), self._environment_name)
        if isinstance(impression, Problem):
            if key is not None:
                self._seen.release(key)
            self._count("received", "invalid")
            return
        if key is None:
            key = impressions.dedup_key(impression)
            if self._seen.claim(key) is not Claim.NEW:
                self._count("received", "duplicates")
                return
        attributes = data.get("attributes") if self._include_attributes else None
        # A copy: the caller may reuse its dict after the evaluation returns.
        item = _Item(impression, key, dict(attributes) if isinstance(attributes, Mapping) else None)
        with self._cond:
            self._counts["received"] += 1
            if self._stopping:
                self._seen.release(key)
                return
            if len(self._queue) >= self._max_queue:
                oldest = self._queue.popleft()
                self._seen.release(oldest.dedup_key)
                self._counts["dropped"] += 1
            self._queue.append(item)
            self._counts["queued"] += 1
            if not self._threads:
                self._start_workers()
            self._cond.notify()

    def _start_workers(self) -> None:
        # Lazily, on the first impression: importing or constructing starts no thread.
        for number in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"fs2split-listener-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or time.monotonic() < self._resume_at):
                    wait = self._resume_at - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                item = self._queue.popleft()
                self._busy += 1
            try:
                self._send(item)
            except Exception:
                self._seen.release(item.dedup_key)
                self._count("errors")
                self._log_sometimes("error", "FullStory impression listener: unexpected error while sending")
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _send(self, item: _Item) -> None:
        try:
            api_key = self._api_key or self._keys.get(FULLSTORY_API_KEY)
        except SecretUnavailable as error:
            self._retry_or_give_up(item, Reply(0, error=str(error)))
            return
        if api_key is None:
            self._seen.release(item.dedup_key)
            self._count("no_api_key")
            return
        api = FullStoryApi(self._upstream, self._api_url, api_key)
        event = impressions.to_event(item.impression, attributes=item.attributes)
        with budget(self._budget_s):
            reply = api.create_event(event, impressions.idempotency_key)
        if reply.ok:
            self._seen.done(item.dedup_key)
            with self._cond:
                self._counts["sent"] += 1
                self._failures = 0
            return
        if reply.verdict is Verdict.RETRY_LATER:
            self._retry_or_give_up(item, reply)
            return
        if reply.verdict is Verdict.OUR_SETUP:
            # Our key or URL is wrong: every send would fail alike. Pause instead of hammering FullStory.
            self._seen.release(item.dedup_key)
            self._count("rejected")
            self._pause(_REJECTED_PAUSE_S)
            self._log_sometimes(
                "key",
                f"FullStory refused the impression listener's request ({reply.describe()}): "
                "check FULLSTORY_API_KEY and FULLSTORY_API_URL",
            )
            return
        # FullStory calls the event itself invalid: remember it anyway, so the same evaluation repeated
        # thousands of times does not send the same doomed request each time.
        self._seen.done(item.dedup_key)
        self._count("rejected")
        self._log_sometimes("invalid", f"FullStory refused a split_evaluation event: {reply.describe()}")

    def _secret_values(self) -> list[str]:
        given = [self._api_key] if self._api_key else []
        return [*given, *self._keys.known_values()]

    def _retry_or_give_up(self, item: _Item, reply: Reply) -> None:
        item.attempts += 1
        with self._cond:
            self._failures += 1
            pause = reply.retry_after or min(_PAUSE_MAX_S, _PAUSE_MIN_S * 2 ** (self._failures - 1))
            self._resume_at = max(self._resume_at, time.monotonic() + min(pause, _PAUSE_MAX_S))
            if item.attempts < _MAX_ATTEMPTS and not self._stopping and len(self._queue) < self._max_queue:
                self._queue.appendleft(item)  # still claimed: duplicates keep being skipped meanwhile
                return
            self._counts["failed"] += 1
        self._seen.release(item.dedup_key)
        self._log_sometimes("unavailable", f"FullStory did not accept an impression: {reply.describe()}")

    def _pause(self, seconds: float) -> None:
        with self._cond:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def _count(self, *names: str) -> None:
        with self._cond:
            for name in names:
                self._counts[name] += 1

    def _log_sometimes(self, kind: str, message: str) -> None:
        """At most one line per kind per minute: a failing FullStory must not flood the application's logs."""
        now = time.monotonic()
        with self._cond:
            if now - self._last_log.get(kind, -_LOG_EVERY_S) < _LOG_EVERY_S:
                return
            self._last_log[kind] = now
            counts = dict(self._counts)
        _log.warning("%s (counts so far: %s)", message, counts)

    def _close_at_exit(self) -> None:
        # Daemon threads die with the interpreter: give queued impressions a short chance to leave.
        self.close(timeout_s=2.0)

    def _after_fork(self) -> None:
        # The child starts afresh: the parent's queue is the parent's to send, and its counters describe it.
        self._reset_runtime()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._last_log = {}


class AsyncFullStoryImpressionListener(FullStoryImpressionListener):
    """The same listener for the asyncio SDK (``get_factory_async``), which awaits ``log_impression``.

    Giving that SDK the plain listener would fail on the ``await``, and the SDK would then skip the rest of
    the evaluation's impressions. Enqueueing takes microseconds, so the coroutine never yields.
    """

    async def log_impression(self, data: Any) -> None:  # type: ignore[override]
        FullStoryImpressionListener.log_impression(self, data)


def _fast_key(raw: Any) -> str | None:
    """(key, flag, treatment, change number) straight from the SDK's Impression namedtuple, or None."""
    try:
        return f"{raw.matching_key}\x1f{raw.feature_name}\x1f{raw.treatment}\x1f{raw.change_number}"
    except AttributeError:
        return None


_live: weakref.WeakSet[FullStoryImpressionListener] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for listener in list(_live):
        listener._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
