"""fs2split: FullStory custom events into Harness FME (Split), and FME impressions into FullStory.

The public face is small:

- `handle` serves one portable request (`Request` in, `Response` out); the two entry points in
  ``main.py`` adapt Cloud Functions and Lambda requests to it;
- `FullStoryImpressionListener` is the Python SDK impression listener;
- `__version__`.

Everything else is internal. Each name is imported on first use, so an application that only uses
the listener never loads the router, and the router never loads the listener.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["FullStoryImpressionListener", "Request", "Response", "__version__", "handle"]

if TYPE_CHECKING:
    from fs2split.app import handle
    from fs2split.http_types import Request, Response
    from fs2split.impressions.listener import FullStoryImpressionListener


def __getattr__(name: str) -> Any:
    if name == "handle":
        from fs2split.app import handle

        return handle
    if name in ("Request", "Response"):
        from fs2split import http_types

        return getattr(http_types, name)
    if name == "FullStoryImpressionListener":
        from fs2split.impressions.listener import FullStoryImpressionListener

        return FullStoryImpressionListener
    raise AttributeError(f"module 'fs2split' has no attribute {name!r}")
