"""Entry points only: Cloud Functions (functions-framework) and AWS Lambda.

Everything else lives in the ``fs2split`` package, which both entry points share.
"""

from __future__ import annotations

from typing import Any

from fs2split.adapters import functions_framework as _gcp
from fs2split.adapters import lambda_event as _aws

try:
    import functions_framework
except ImportError:  # the Lambda zip does not ship functions-framework (and Flask): nothing to register
    functions_framework = None


def fs2split(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Google Cloud Functions HTTP entry point: ``functions-framework --target fs2split``."""
    return _gcp.serve(request)


if functions_framework is not None:
    fs2split = functions_framework.http(fs2split)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point: Function URL, HTTP API (2.0) and REST API proxy (1.0) events."""
    return _aws.serve(event)
