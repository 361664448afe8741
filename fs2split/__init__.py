"""fs2split: FullStory custom events into Harness FME (Split), and FME impressions into FullStory.

The public face is small: `handle` serves one portable request, and the two entry points in
``main.py`` adapt Cloud Functions and Lambda requests to it; `fs2split.listener` holds the
Python SDK impression listener. Everything else is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Request", "Response", "__version__", "handle"]

if TYPE_CHECKING:
    from fs2split.app import handle
    from fs2split.http_types import Request, Response


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import fs2split.listener` inside an app does not load the router.
    if name == "handle":
        from fs2split.app import handle

        return handle
    if name in ("Request", "Response"):
        from fs2split import http_types

        return getattr(http_types, name)
    raise AttributeError(f"module 'fs2split' has no attribute {name!r}")
