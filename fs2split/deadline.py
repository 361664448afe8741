"""The time budget of the request being served: one deadline in a context variable.

Shared by the upstream client (each attempt's timeouts are cut to what is left) and the key store (a
secret fetch counts against the budget too), so it sits below both.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("fs2split_deadline", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Everything inside this block ends within ``seconds``; a budget inside another never extends it."""
    outer = _deadline.get()
    deadline = time.monotonic() + seconds
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the current budget, or None outside any budget."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
