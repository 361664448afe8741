"""Read a secret's value from GCP Secret Manager or AWS Secrets Manager, given a reference.

A setting such as ``SPLIT_API_KEY`` can be given as ``SPLIT_API_KEY_SECRET=<reference>`` instead of its value:

- ``projects/P/secrets/S/versions/V`` is a GCP Secret Manager secret version;
- anything else is an AWS Secrets Manager secret: an ARN
  (``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME``)
  or a name, read in ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``).

Each cloud SDK is imported only when a reference for that cloud is first fetched, so a function that gets its
settings from plain environment variables never pays the import (≈250 ms for the gRPC Secret Manager client).
One client per cloud (per region on AWS) is created lazily and kept for the life of the process.

Every failure raises :class:`SecretUnavailable`, whose message names the reference and the reason but never
contains a secret value.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from fs2split.config.errors import SecretUnavailable

__all__ = ["SecretUnavailable", "fetch_secret", "is_gcp_reference"]

_GCP_VERSION = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")
_AWS_ARN = re.compile(r"^arn:[a-z0-9-]+:secretsmanager:(?P<region>[a-z0-9-]+):\d*:secret:.+$")
_MAX_REASON = 300

_lock = threading.Lock()
_gcp_client: Any = None
_aws_clients: dict[str | None, Any] = {}


def is_gcp_reference(reference: str) -> bool:
    """True when ``reference`` is a GCP Secret Manager version name ``projects/P/secrets/S/versions/V``."""
    return _GCP_VERSION.match(reference) is not None


def fetch_secret(reference: str, *, gcp_client: object | None = None, aws_client: object | None = None) -> str:
    """Return the value of the secret ``reference`` points to, stripped of surrounding whitespace.

    ``gcp_client`` (a ``SecretManagerServiceClient``) and ``aws_client`` (a boto3 ``secretsmanager`` client)
    replace the process-wide clients, for tests and for callers that manage their own.
    Raises :class:`SecretUnavailable` when the secret cannot be read or is empty.
    """
    reference = reference.strip()
    if is_gcp_reference(reference):
        return _fetch_gcp(reference, gcp_client)
    if not reference:
        raise SecretUnavailable("secret reference", "the reference is empty")
    return _fetch_aws(reference, aws_client)


def _fetch_gcp(reference: str, client: object | None) -> str:
    name = f"GCP Secret Manager secret {reference}"
    try:
        service: Any = client or _gcp_default_client()
        response: Any = service.access_secret_version(request={"name": reference})
    except SecretUnavailable as exc:
        raise SecretUnavailable(name, exc.reason) from exc
    except Exception as exc:  # the SDK's errors (permission, not found, transport) carry no secret value
        raise SecretUnavailable(name, _describe(exc)) from exc
    try:
        data = response.payload.data
    except AttributeError:
        raise SecretUnavailable(name, "the response has no payload") from None
    return _clean(name, data)


def _fetch_aws(reference: str, client: object | None) -> str:
    name = f"AWS Secrets Manager secret {reference}"
    try:
        service: Any = client or _aws_default_client(_aws_region(reference))
        response: Any = service.get_secret_value(SecretId=reference)
    except SecretUnavailable as exc:
        raise SecretUnavailable(name, exc.reason) from exc
    except Exception as exc:  # botocore's errors (ClientError, NoCredentialsError, ...) carry no secret value
        raise SecretUnavailable(name, _describe(exc)) from exc
    value = response.get("SecretString")
    if value is None:
        value = response.get("SecretBinary")
    if value is None:
        raise SecretUnavailable(name, "the secret has neither SecretString nor SecretBinary")
    return _clean(name, value)


def _clean(name: str, value: object) -> str:
    """Decode and strip a fetched value. Failures raise without chaining: a decode error holds the bytes."""
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise SecretUnavailable(name, "the value is not valid UTF-8") from None
    if not isinstance(value, str):
        raise SecretUnavailable(name, f"the value is a {type(value).__name__}, not text")
    value = value.strip()
    if not value:
        raise SecretUnavailable(name, "the value is empty")
    return value


def _aws_region(reference: str) -> str | None:
    match = _AWS_ARN.match(reference)
    if match:
        return match.group("region")
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def _gcp_default_client() -> Any:
    global _gcp_client
    with _lock:
        if _gcp_client is None:
            try:
                from google.cloud import secretmanager
            except ImportError:
                raise SecretUnavailable("GCP Secret Manager", _missing("google-cloud-secret-manager")) from None
            try:
                _gcp_client = secretmanager.SecretManagerServiceClient()
            except Exception as exc:  # no credentials: raised at construction, and retried on the next call
                raise SecretUnavailable("GCP Secret Manager", _describe(exc)) from exc
        return _gcp_client


def _aws_default_client(region: str | None) -> Any:
    with _lock:
        client = _aws_clients.get(region)
        if client is None:
            try:
                import boto3
            except ImportError:
                raise SecretUnavailable("AWS Secrets Manager", _missing("boto3")) from None
            try:
                client = boto3.client("secretsmanager", region_name=region)
            except Exception as exc:  # e.g. NoRegionError
                raise SecretUnavailable("AWS Secrets Manager", _describe(exc)) from exc
            _aws_clients[region] = client
        return client


def _missing(package: str) -> str:
    return f"the {package} package is not installed"


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"
