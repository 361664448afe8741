"""The baseline: the cheapest function functions-framework can serve, measured exactly like fs2split.

``?wait_ms=N`` makes it wait N ms first, doing nothing: the floor of any function that waits once
for an upstream N ms away, on this machine (idle waits cost extra wake-ups here too).
"""

from __future__ import annotations

import time
from typing import Any

import functions_framework


@functions_framework.http
def bare(request: Any) -> str:
    wait_ms = request.args.get("wait_ms")
    if wait_ms:
        time.sleep(float(wait_ms) / 1000)
    return "ok"
