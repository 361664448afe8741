"""Entry points only: Cloud Functions (functions-framework) and AWS Lambda.

Everything else lives in the ``fs2split`` package, which both entry points share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fs2split.adapters import functions_framework as _gcp
from fs2split.adapters import lambda_event as _aws


def _http_function(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Register with functions-framework where it is installed; the Lambda zip leaves it (and Flask) out."""
    try:
        import functions_framework
    except ImportError:
        return function
    return functions_framework.http(function)


@_http_function
def fs2split(request: Any) -> tuple[bytes | Iterator[bytes], int, dict[str, str]]:
    """Google Cloud Functions HTTP entry point: ``functions-framework --target fs2split``."""
    return _gcp.serve(request)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point: Function URL, HTTP API (2.0) and REST API proxy (1.0) events."""
    return _aws.serve(event)


@_http_function
def drain(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """Queue mode on GCP: ``functions-framework --target drain``, POSTed by Cloud Scheduler to drain Pub/Sub."""
    from fs2split.adapters import pubsub_drain

    return pubsub_drain.serve(request)


def lambda_drain(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Queue mode on AWS: an SQS event source mapping batch in, ``{"batchItemFailures": [...]}`` out."""
    from fs2split.adapters import sqs_batch

    return sqs_batch.serve(event, context)
