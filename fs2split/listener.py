"""The documented import path of the Python SDK impression listener, kept for existing code.

New code writes ``from fs2split import FullStoryImpressionListener``; the listener lives in
`fs2split.impressions.listener`.
"""

from fs2split.impressions.listener import FullStoryImpressionListener

__all__ = ["FullStoryImpressionListener"]
