"""Where keys come from: the environment, a cloud secret reference (fetched lazily, cached),
or a file beside main.py as the original bridge kept them; and what a failure looks like."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import responses
from moto import mock_aws

from fs2split.app import handle
from fs2split.config.keys import SPLIT_API_KEY, Keys, SecretUnavailable
from fs2split.http_types import Request
from tests.conftest import event_bytes


class RecordingFetch:
    """Stands in for the cloud secret managers and records what it was asked."""

    def __init__(self, *values: str | Exception) -> None:
        self.values = list(values)
        self.asked: list[str] = []

    def __call__(self, reference: str) -> str:
        self.asked.append(reference)
        value = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        if isinstance(value, Exception):
            raise value
        return value


def test_plain_environment_variable_wins_over_a_secret_reference() -> None:
    fetch = RecordingFetch("from-manager")
    keys = Keys({"SPLIT_API_KEY": "from-env", "SPLIT_API_KEY_SECRET": "projects/p/secrets/s/versions/1"}, fetch=fetch)

    assert keys.get(SPLIT_API_KEY) == "from-env"
    assert fetch.asked == []


def test_secret_reference_is_fetched_on_first_use_and_cached() -> None:
    fetch = RecordingFetch("from-manager")
    keys = Keys({"SPLIT_API_KEY_SECRET": "projects/p/secrets/s/versions/3"}, fetch=fetch, legacy_dir=None)

    assert fetch.asked == []  # configured() and construction fetch nothing
    assert keys.configured(SPLIT_API_KEY)
    assert [keys.get(SPLIT_API_KEY) for _ in range(3)] == ["from-manager"] * 3
    assert fetch.asked == ["projects/p/secrets/s/versions/3"]


def test_cached_secret_is_fetched_again_after_its_ttl() -> None:
    fetch = RecordingFetch("v1", "v2")
    keys = Keys({"SPLIT_API_KEY_SECRET": "name"}, fetch=fetch, ttl_s=0, legacy_dir=None)

    assert [keys.get(SPLIT_API_KEY), keys.get(SPLIT_API_KEY)] == ["v1", "v2"]


def test_a_failed_refresh_keeps_serving_the_cached_value() -> None:
    fetch = RecordingFetch("v1", SecretUnavailable("aws secret 'name'", "throttled"))
    keys = Keys({"SPLIT_API_KEY_SECRET": "name"}, fetch=fetch, ttl_s=0, legacy_dir=None)

    assert [keys.get(SPLIT_API_KEY), keys.get(SPLIT_API_KEY)] == ["v1", "v1"]


def test_key_files_beside_main_py_are_still_read_for_migrating_teams(tmp_path: Path) -> None:
    (tmp_path / "SPLIT_API_KEY").write_text("file-key\n")

    keys = Keys({}, legacy_dir=tmp_path)

    assert keys.configured(SPLIT_API_KEY)
    assert keys.get(SPLIT_API_KEY) == "file-key"


def test_unavailable_secret_is_a_503_that_names_the_reference_but_not_a_value(
    make_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SPLIT_API_KEY": "k", "FULLSTORY_WEBHOOK_SECRET_SECRET": "projects/p/secrets/hook/versions/2"}
    instance = make_instance(**env)
    denied = SecretUnavailable("gcp secret projects/p/secrets/hook/versions/2", "permission denied")
    instance.keys = Keys(env, fetch=RecordingFetch(denied), legacy_dir=None)

    response = handle(Request("POST", "/fullstory", {}, {}, event_bytes("fullstory-test-event.json")), instance)

    assert (response.status, response.body["reason"]) == (503, "secret_unavailable")
    assert "projects/p/secrets/hook/versions/2" in response.body["message"]
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"route"' in x]
    assert line["severity"] == "ERROR"


@mock_aws
def test_fme_key_from_aws_secrets_manager_is_used_and_never_logged(
    make_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="fs2split/split-sdk-key", SecretString="sdk-from-aws-777"
    )["ARN"]
    instance = make_instance(SPLIT_API_KEY_SECRET=arn, FS2SPLIT_KEY_FALLBACK="fullstory_user_id")

    with responses.RequestsMock() as api:
        api.post("https://events.split.io/api/events/bulk", status=202)
        response = handle(Request("POST", "/", {}, {}, event_bytes("fullstory-custom-event.json")), instance)
        [call] = api.calls

    assert response.body["reason"] == "delivered"
    assert call.request.headers["Authorization"] == "Bearer sdk-from-aws-777"
    assert "sdk-from-aws-777" not in capsys.readouterr().out


def test_an_empty_key_file_is_refused_as_unavailable_not_a_crash(tmp_path: Path, make_instance: Any) -> None:
    (tmp_path / "SPLIT_API_KEY").write_text("\n")
    instance = make_instance(FS2SPLIT_KEY_FALLBACK="fullstory_user_id")
    instance.keys = Keys({}, legacy_dir=tmp_path)

    response = handle(Request("POST", "/", {}, {}, event_bytes("fullstory-custom-event.json")), instance)

    assert (response.status, response.body["reason"]) == (503, "secret_unavailable")
