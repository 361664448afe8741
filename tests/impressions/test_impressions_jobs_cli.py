"""``python -m fs2split impressions-jobs``, run as a user runs it (a subprocess), against the loopback FullStory
serving batch job status and errors. Job ids come from arguments or from the log lines fs2split wrote."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request
from fs2split.instance import Instance
from fs2split.logs import LOGGER_NAME, JsonLineFormatter
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream, Fault

ROOT = Path(__file__).resolve().parents[2]
FS_KEY = "fs-admin-key-0123456789"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def bridge(up: FakeUpstream, make_instance: Any) -> Instance:
    return make_instance(FULLSTORY_API_KEY=FS_KEY, FULLSTORY_API_URL=up.fullstory_url)


def jobs_command(up: FakeUpstream, *args: str, key: str | None = FS_KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FULLSTORY_", "FS2SPLIT_", "SPLIT_"))}
    env.update(FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_RETRY_BUDGET_SECONDS="2")
    if key is not None:
        env["FULLSTORY_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "fs2split", "impressions-jobs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def webhook(instance: Instance, count: int, start: int = 0) -> dict[str, Any]:
    """Post ``count`` new impressions; returns the response body (with its ``jobs``)."""
    base = event_json("split-impressions-webhook.json")[0]
    items = [{**base, "key": f"customer-{n}"} for n in range(start, start + count)]
    response = handle(Request("POST", "/split/impressions", {}, {}, json.dumps(items).encode()), instance)
    assert response.status == 200, response.body
    return response.body


def log_lines_of(action: Any) -> str:
    """The JSON log lines fs2split writes (as on stdout) while ``action`` runs."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        action()
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_given_a_completed_job_id_then_its_status_and_counts_are_shown_and_exit_0(
    up: FakeUpstream, bridge: Instance
) -> None:
    [job] = webhook(bridge, 150)["jobs"]

    run = jobs_command(up, job["id"])

    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [job["id"], "COMPLETED", "imported=150", "errors=0"]
    [status_call] = up.calls("GET", f"/v2/events/batch/{job['id']}")
    assert status_call.headers["authorization"] == f"Basic {FS_KEY}"


def test_given_a_job_with_errors_then_the_count_and_fullstorys_messages_are_shown_and_exit_1(
    up: FakeUpstream, bridge: Instance
) -> None:
    [job] = webhook(bridge, 150)["jobs"]
    errors = [{"code": "invalid_argument", "message": f"requests[{n}]: uid is too long"} for n in range(3)]
    up.set_job(job["id"], "COMPLETED", errors)
    up.errors_page_size = 2  # the errors come in two pages

    run = jobs_command(up, job["id"])

    assert run.returncode == 1
    assert f"{job['id']}  COMPLETED  imported=147  errors=3" in run.stdout
    assert [line.strip() for line in run.stdout.splitlines()[1:]] == [
        f"invalid_argument: requests[{n}]: uid is too long" for n in range(3)
    ]
    assert len(up.calls("GET", f"/v2/events/batch/{job['id']}/errors")) == 2
    assert FS_KEY not in run.stdout + run.stderr


def test_given_a_failed_job_then_it_is_reported_failed_and_exit_1(up: FakeUpstream) -> None:
    up.set_job("job-failed-1", "FAILED", [{"code": "internal", "message": "import failed"}])

    run = jobs_command(up, "job-failed-1")

    assert run.returncode == 1
    assert run.stdout.splitlines()[0].split()[:2] == ["job-failed-1", "FAILED"]
    assert "internal: import failed" in run.stdout


def test_given_a_job_still_processing_then_it_is_shown_as_such_and_exit_0(up: FakeUpstream) -> None:
    up.set_job("job-pending", "PROCESSING")

    run = jobs_command(up, "job-pending")

    assert (run.returncode, run.stdout.split()[:2]) == (0, ["job-pending", "PROCESSING"])


def test_given_fs2splits_log_then_every_job_it_names_is_read(
    up: FakeUpstream, bridge: Instance, tmp_path: Path
) -> None:
    bodies: list[dict[str, Any]] = []
    lines = log_lines_of(lambda: bodies.extend([webhook(bridge, 120), webhook(bridge, 130, start=1000)]))
    log = tmp_path / "fs2split.log"
    log.write_text("not json\n" + lines)

    run = jobs_command(up, "--log", str(log))

    assert run.returncode == 0, run.stderr
    shown = [line.split()[:3] for line in run.stdout.splitlines()]
    assert shown == [
        [b["jobs"][0]["id"], "COMPLETED", f"impressions={n}"] for b, n in zip(bodies, (120, 130), strict=True)
    ]


def test_given_since_then_only_jobs_logged_within_it_are_read(
    up: FakeUpstream, bridge: Instance, tmp_path: Path
) -> None:
    old_line, new_line = (
        log_lines_of(lambda: webhook(bridge, 120)).strip(),
        log_lines_of(lambda: webhook(bridge, 120, start=1000)).strip(),
    )
    old = json.loads(old_line)
    old["time"] = "2020-01-01T00:00:00.000Z"
    log = tmp_path / "fs2split.log"
    log.write_text(json.dumps(old) + "\n" + new_line + "\n")

    run = jobs_command(up, "--log", str(log), "--since", "1h")

    assert run.returncode == 0, run.stderr
    assert [line.split()[0] for line in run.stdout.splitlines()] == [json.loads(new_line)["fullstory_jobs"][0]["id"]]


def test_given_a_standard_key_then_the_job_is_unreadable_with_the_role_it_needs(up: FakeUpstream) -> None:
    up.set_job("job-1", "COMPLETED")
    up.script("GET", "/v2/events/batch/", Fault(status=403))

    run = jobs_command(up, "job-1")

    assert run.returncode == 1
    assert "UNREADABLE" in run.stdout
    assert "Admin or Architect" in run.stdout


def test_given_an_unknown_job_then_it_is_reported_not_found_and_exit_1(up: FakeUpstream) -> None:
    run = jobs_command(up, "no-such-job")

    assert run.returncode == 1
    assert "not found" in run.stdout


def test_given_no_job_ids_then_a_usage_error(up: FakeUpstream) -> None:
    run = jobs_command(up)

    assert run.returncode == 2
    assert "--log" in run.stderr
    assert up.calls() == []


def test_given_no_api_key_then_exit_1_naming_the_setting(up: FakeUpstream) -> None:
    run = jobs_command(up, "job-1", key=None)

    assert run.returncode == 1
    assert "FULLSTORY_API_KEY" in run.stderr


def test_given_a_cloud_logging_json_export_then_the_jobs_in_its_entries_are_read(
    up: FakeUpstream, bridge: Instance, tmp_path: Path
) -> None:
    # `gcloud logging read --format=json`: an indented JSON array, each line's fields under jsonPayload.
    line = json.loads(log_lines_of(lambda: webhook(bridge, 120)).strip())
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"jsonPayload": line, "timestamp": line["time"]}], indent=2))

    run = jobs_command(up, "--log", str(export))

    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[:2] == [line["fullstory_jobs"][0]["id"], "COMPLETED"]
