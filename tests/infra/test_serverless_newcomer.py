"""What a newcomer meets with the Serverless configurations: ``serverless package`` works offline for Google
with no cloud variable at all (a deploy without a project refuses and names the variable), and ``serverless
offline`` takes a gzipped impressions webhook whatever its Content-Type says. Runs osls and serverless-offline,
hence the ``e2e`` marks."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.infra.test_serverless import (
    ROOT,
    base_env,
    node_modules,  # autouse: missing tooling fails in CI, skips loudly elsewhere
    offline,  # `serverless offline` for serverless.aws.yml, with FS2SPLIT_DRY_RUN=1
    service_copy,
    stub_gcloud,
)

__all__ = ["node_modules", "offline"]

SAMPLE = (ROOT / "examples" / "bodies" / "split-impressions-webhook.json").read_bytes()


def run_serverless(tmp_path: Path, *args: str) -> tuple[int, str, list[list[str]]]:
    service = service_copy(tmp_path / "service")
    log = stub_gcloud(tmp_path / "bin")
    env = base_env()  # no GOOGLE_*, CLOUDSDK_*, AWS_* or settings at all
    env["PATH"] = f"{log.parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [str(service / "node_modules" / ".bin" / "serverless"), *args],
        cwd=service,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result.returncode, result.stdout + result.stderr, calls


@pytest.mark.e2e
def test_gcp_package_works_offline_with_no_cloud_variable_set(tmp_path: Path) -> None:
    status, output, calls = run_serverless(tmp_path, "package")

    assert status == 0, output
    assert calls == []
    with zipfile.ZipFile(tmp_path / "service" / ".serverless" / "fs2split.zip") as archive:
        assert {"main.py", "requirements.txt", "fs2split/app.py"} <= set(archive.namelist())


@pytest.mark.e2e
def test_gcp_deploy_without_a_project_refuses_and_names_the_variable(tmp_path: Path) -> None:
    status, output, calls = run_serverless(tmp_path, "deploy")

    assert status != 0
    assert "GOOGLE_CLOUD_PROJECT" in output
    assert calls == []


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.e2e
def test_serverless_offline_takes_gzipped_impressions_whatever_the_content_type(offline: str) -> None:
    answers = {
        content_type: post(f"{offline}/split/impressions", gzip.compress(SAMPLE), content_type)
        for content_type in ("application/json", "application/gzip", "application/octet-stream")
    }

    assert {kind: (status, body["reason"], body["impressions"]) for kind, (status, body) in answers.items()} == {
        "application/json": (200, "dry_run", 1),
        "application/gzip": (200, "dry_run", 1),
        "application/octet-stream": (200, "dry_run", 1),
    }


@pytest.mark.e2e
def test_serverless_offline_still_takes_plain_json_bodies(offline: str) -> None:
    status, body = post(f"{offline}/split/impressions", SAMPLE, "application/json")

    assert (status, body["reason"], body["impressions"]) == (200, "dry_run", 1)
