"""``python -m fs2split doctor``, run as a real subprocess against a loopback FullStory and FME: one
line per check, exit 0 only when every configured check holds, and never a secret in its output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fme_judge import assert_fme_accepts
from tests.support.upstream import FakeUpstream, Fault

ROOT = Path(__file__).resolve().parents[1]
FS_KEY = "fs-key-doctor-7c1e"
SDK_KEY = "sdk-key-doctor-42ab"
SECRET = "webhook-secret-doctor-0d9f"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def doctor(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    own = {k: v for k, v in os.environ.items() if not k.startswith(("SPLIT_", "FULLSTORY_", "FS2SPLIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "fs2split", "doctor", *arguments],
        cwd=ROOT,
        env={**own, "FS2SPLIT_RETRY_BACKOFF_SECONDS": "0", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def live(up: FakeUpstream) -> dict[str, str]:
    return {
        "FULLSTORY_API_KEY": FS_KEY,
        "FULLSTORY_API_URL": up.fullstory_url,
        "SPLIT_API_KEY": SDK_KEY,
        "SPLIT_EVENTS_URL": up.split_events_url,
        "FULLSTORY_WEBHOOK_SECRET": SECRET,
    }


def line(output: str, check: str) -> str:
    [found] = [text for text in output.splitlines() if text[6:].split(":")[0] == check]
    return found


def test_a_healthy_configuration_exits_0_with_one_ok_line_per_configured_check(up: FakeUpstream) -> None:
    result = doctor(live(up))

    assert result.returncode == 0, result.stdout + result.stderr
    assert line(result.stdout, "settings").startswith("ok")
    assert line(result.stdout, "secret FULLSTORY_WEBHOOK_SECRET").startswith("ok")
    assert line(result.stdout, "FullStory key may read users").startswith("ok")
    [lookup] = up.calls("GET", "/v2/users/")
    assert lookup.headers["authorization"] == f"Basic {FS_KEY}"
    assert lookup.path.removeprefix("/v2/users/").isdigit()


def test_no_secret_is_ever_printed(up: FakeUpstream) -> None:
    result = doctor(live(up), "--send-test-event")

    for secret in (FS_KEY, SDK_KEY, SECRET):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("status", [401, 403])
def test_a_key_the_users_api_refuses_fails_naming_the_role_it_needs(up: FakeUpstream, status: int) -> None:
    up.script("GET", "/v2/users/", Fault(status=status))

    result = doctor(live(up))

    assert result.returncode == 1
    assert line(result.stdout, "FullStory key may read users").startswith("FAIL")
    assert "Admin or Architect" in result.stdout


def test_without_keys_every_key_check_is_skipped_and_the_run_passes(up: FakeUpstream) -> None:
    result = doctor({}, "--send-test-event")

    assert result.returncode == 0, result.stdout
    assert line(result.stdout, "FullStory key may read users").startswith("skip")
    assert line(result.stdout, "FME key accepts an event").startswith("skip")
    assert up.calls() == []


def test_the_fme_key_is_only_tried_with_send_test_event(up: FakeUpstream) -> None:
    doctor(live(up))
    assert up.fme_events() == []

    result = doctor(live(up), "--send-test-event")

    assert result.returncode == 0, result.stdout
    [event] = up.fme_events()
    assert event["eventTypeId"] == "fs2split_doctor"
    assert_fme_accepts(event)
    [post] = up.calls("POST", "/api/events/bulk")
    assert post.headers["authorization"] == f"Bearer {SDK_KEY}"


def test_an_fme_key_fme_refuses_fails_the_run(up: FakeUpstream) -> None:
    up.script("POST", "/api/events/bulk", Fault(status=401))

    result = doctor(live(up), "--send-test-event")

    assert result.returncode == 1
    assert line(result.stdout, "FME key accepts an event").startswith("FAIL")


def test_invalid_settings_fail_the_run_naming_the_setting(up: FakeUpstream) -> None:
    result = doctor({"FS2SPLIT_RETRY_BUDGET_SECONDS": "soon"})

    assert result.returncode == 1
    assert "FS2SPLIT_RETRY_BUDGET_SECONDS" in line(result.stdout, "settings")


def test_an_invalid_mapping_fails_the_run(up: FakeUpstream) -> None:
    result = doctor({"FS2SPLIT_MAPPING": '{"streams": {"name": "a"}}'})

    assert result.returncode == 1
    assert "streams.timestamp" in line(result.stdout, "mapping")


def test_an_unreadable_secret_reference_fails_its_line(up: FakeUpstream) -> None:
    result = doctor({"FULLSTORY_STREAM_TOKEN_SECRET": "not-a-secret-reference"})

    assert result.returncode == 1
    assert line(result.stdout, "secret FULLSTORY_STREAM_TOKEN").startswith("FAIL")
