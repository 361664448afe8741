"""fs2split: FullStory custom events into Harness FME (Split), and FME impressions into FullStory.

The public face is small: `handle` serves one portable request, and the two entry points in
``main.py`` adapt Cloud Functions and Lambda requests to it. Everything else is internal.
"""

from __future__ import annotations

__version__ = "0.1.0"

from fs2split.app import handle
from fs2split.http_types import Request, Response

__all__ = ["Request", "Response", "__version__", "handle"]
