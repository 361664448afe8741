"""fs2split.config.secret_managers: GCP through an injected fake client, AWS through moto. No network."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fs2split.config import secret_managers
from fs2split.config.secret_managers import SecretUnavailable, fetch_secret, is_gcp_reference

ROOT = Path(__file__).resolve().parents[2]
GCP_REF = "projects/my-project/secrets/split-api-key/versions/3"
VALUE = "sdk-key-0123456789abcdef"


class FakeGcpClient:
    """Stands in for SecretManagerServiceClient: records each request, answers with a fixed payload."""

    def __init__(self, data: bytes = VALUE.encode(), error: Exception | None = None) -> None:
        self.data = data
        self.error = error
        self.requests: list[dict[str, Any]] = []

    def access_secret_version(self, request: dict[str, Any]) -> Any:
        self.requests.append(request)
        if self.error:
            raise self.error
        return SimpleNamespace(payload=SimpleNamespace(data=self.data))


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without cached clients, so one test's client never leaks into the next."""
    monkeypatch.setattr(secret_managers, "_gcp_client", None)
    monkeypatch.setattr(secret_managers, "_aws_clients", {})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a default region, with every AWS call answered by moto in memory."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        yield


# --- which cloud a reference goes to -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "gcp"),
    [
        (GCP_REF, True),
        ("projects/p/secrets/s/versions/latest", True),
        ("projects/p/secrets/s", False),
        ("projects/p/secrets/s/versions/1/extra", False),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:fs2split/split-AbCdEf", False),
        ("fs2split/split-api-key", False),
    ],
)
def test_reference_kind_is_decided_by_the_gcp_version_pattern(reference: str, gcp: bool) -> None:
    assert is_gcp_reference(reference) is gcp


def test_importing_the_module_imports_no_cloud_sdk() -> None:
    # GIVEN a fresh interpreter  WHEN fs2split.config.secret_managers is imported
    code = (
        "import sys, json, fs2split.config.secret_managers\n"
        "print(json.dumps([m for m in ('boto3', 'botocore', 'google.cloud.secretmanager', 'grpc')"
        " if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    # THEN neither cloud SDK was loaded: cold starts without secret references don't pay for them
    assert json.loads(result.stdout) == []


# --- GCP -------------------------------------------------------------------------------------------------


def test_gcp_reference_asks_for_that_version_and_returns_the_stripped_payload() -> None:
    client = FakeGcpClient(data=f"  {VALUE}\n".encode())

    assert fetch_secret(GCP_REF, gcp_client=client) == VALUE
    assert client.requests == [{"name": GCP_REF}]


def test_gcp_default_client_is_created_lazily_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud import secretmanager

    created: list[FakeGcpClient] = []

    def factory() -> FakeGcpClient:
        created.append(FakeGcpClient())
        return created[-1]

    monkeypatch.setattr(secretmanager, "SecretManagerServiceClient", factory)

    assert fetch_secret(GCP_REF) == VALUE
    assert fetch_secret("projects/p/secrets/other/versions/1") == VALUE
    assert len(created) == 1
    assert created[0].requests == [{"name": GCP_REF}, {"name": "projects/p/secrets/other/versions/1"}]


def test_gcp_client_that_cannot_be_built_raises_and_is_retried_next_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from google.cloud import secretmanager

    def no_credentials() -> FakeGcpClient:
        raise RuntimeError("Your default credentials were not found.")

    monkeypatch.setattr(secretmanager, "SecretManagerServiceClient", no_credentials)
    with pytest.raises(SecretUnavailable, match="credentials were not found") as info:
        fetch_secret(GCP_REF)
    assert info.value.reference == f"GCP Secret Manager secret {GCP_REF}"

    monkeypatch.setattr(secretmanager, "SecretManagerServiceClient", FakeGcpClient)
    assert fetch_secret(GCP_REF) == VALUE


def test_gcp_api_error_names_the_reference_and_the_cause() -> None:
    from google.api_core.exceptions import PermissionDenied

    client = FakeGcpClient(error=PermissionDenied("Permission 'secretmanager.versions.access' denied"))

    with pytest.raises(SecretUnavailable) as info:
        fetch_secret(GCP_REF, gcp_client=client)

    assert GCP_REF in str(info.value)
    assert "PermissionDenied" in info.value.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"\xff\xfe" + VALUE.encode(), "not valid UTF-8"), (b" \n\t", "empty")],
)
def test_gcp_unusable_payload_raises_without_the_value(data: bytes, reason: str) -> None:
    with pytest.raises(SecretUnavailable, match=reason) as info:
        fetch_secret(GCP_REF, gcp_client=FakeGcpClient(data=data))

    assert VALUE not in str(info.value)
    # No chained decode error either: it would carry the raw bytes into a logged traceback.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


# --- AWS (moto) ------------------------------------------------------------------------------------------


def test_aws_secret_by_name_uses_the_default_region(aws: None) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="fs2split/split-api-key", SecretString=f"{VALUE}\n"
    )

    assert fetch_secret("fs2split/split-api-key") == VALUE


def test_aws_secret_by_arn_is_read_in_the_arn_region(aws: None) -> None:
    # GIVEN a secret in eu-west-1 while the function's default region is us-east-1
    arn = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="fs2split/fullstory-api-key", SecretString=VALUE
    )["ARN"]

    # WHEN it is fetched by ARN  THEN the client asks eu-west-1, where it lives
    assert fetch_secret(arn) == VALUE
    assert set(secret_managers._aws_clients) == {"eu-west-1"}


def test_aws_secret_binary_only_is_decoded(aws: None) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="binary", SecretBinary=VALUE.encode())

    assert fetch_secret("binary") == VALUE


def test_aws_client_is_created_once_per_region(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.create_secret(Name="a", SecretString="1")
    sm.create_secret(Name="b", SecretString="2")
    made: list[str | None] = []
    real_client = boto3.client

    def counting_client(service: str, region_name: str | None = None) -> Any:
        made.append(region_name)
        return real_client(service, region_name=region_name)

    monkeypatch.setattr(boto3, "client", counting_client)

    assert (fetch_secret("a"), fetch_secret("b"), fetch_secret("a")) == ("1", "2", "1")
    assert made == ["us-east-1"]


def test_aws_missing_secret_raises_secret_unavailable(aws: None) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fs2split/nope-AbCdEf"

    with pytest.raises(SecretUnavailable) as info:
        fetch_secret(arn)

    assert info.value.reference == f"AWS Secrets Manager secret {arn}"
    assert "ResourceNotFoundException" in info.value.reason


def test_aws_empty_value_raises_without_echoing_anything(aws: None) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="blank", SecretString="  \n")

    with pytest.raises(SecretUnavailable, match="blank: the value is empty"):
        fetch_secret("blank")


def test_aws_injected_client_is_used_as_given() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            self.calls.append(SecretId)
            return {"SecretString": VALUE}

    client = Recorder()

    assert fetch_secret("by-name", aws_client=client) == VALUE
    assert client.calls == ["by-name"]
    assert secret_managers._aws_clients == {}


def test_empty_reference_is_refused() -> None:
    with pytest.raises(SecretUnavailable, match="empty"):
        fetch_secret("  ")


def test_failure_reason_is_bounded_to_one_line() -> None:
    # GIVEN a client whose failure message happens to be long and noisy
    client = FakeGcpClient(error=RuntimeError("x" * 5000))

    with pytest.raises(SecretUnavailable) as info:
        fetch_secret(GCP_REF, gcp_client=client)

    # THEN the reason is bounded, one line, and still names the reference
    assert len(info.value.reason) <= 300
    assert "\n" not in str(info.value)
