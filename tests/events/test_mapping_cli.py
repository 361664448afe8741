"""``python -m fs2split check-mapping [FILE]``: exit status and the one line an operator reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fs2split.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_YAML = Path(__file__).parent / "mapping-checkout.yaml"


@pytest.fixture(autouse=True)
def no_mapping_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FS2SPLIT_MAPPING", raising=False)
    monkeypatch.delenv("FS2SPLIT_MAPPING_FILE", raising=False)


def test_valid_file_exits_0_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check-mapping", str(CHECKOUT_YAML)])

    assert status == 0
    assert capsys.readouterr().out == (
        f"mapping ok ({CHECKOUT_YAML}): 2 event rule(s), 1 drop glob(s); "
        "properties: 1 include, 2 exclude, 1 redact glob(s)\n"
    )


def test_invalid_file_exits_1_and_prints_the_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fs2split.yaml"
    path.write_text("events:\n  'Plan *': {traffic_type: Account}\n")

    status = main(["check-mapping", str(path)])

    assert status == 1
    assert capsys.readouterr().err == (
        f'invalid mapping ({path}): events."Plan *".traffic_type: must be a non-empty lowercase string, '
        "got 'Account'\n"
    )


def test_without_file_checks_the_mapping_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FS2SPLIT_MAPPING", json.dumps({"drop": ["debug_[x"]}))

    status = main(["check-mapping"])

    assert status == 1
    assert capsys.readouterr().err.startswith("invalid mapping (FS2SPLIT_MAPPING): drop[0]: bad glob")


def test_without_file_follows_fs2split_mapping_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FS2SPLIT_MAPPING_FILE", str(CHECKOUT_YAML))

    assert main(["check-mapping"]) == 0
    assert capsys.readouterr().out.startswith(f"mapping ok (FS2SPLIT_MAPPING_FILE={CHECKOUT_YAML}): 2 event rule(s)")


@pytest.mark.skipif((ROOT / "fs2split.yaml").exists(), reason="a local fs2split.yaml is beside main.py")
def test_without_any_mapping_exits_0_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-mapping"]) == 0
    assert capsys.readouterr().out.startswith("no mapping:")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "check-mapping" in capsys.readouterr().err


def test_runs_as_python_dash_m_in_a_real_process(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"events": {"A": {"event_type": "not valid!"}}}')

    done = subprocess.run(
        [sys.executable, "-m", "fs2split", "check-mapping", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.startswith(f"invalid mapping ({path}): events.\"A\".event_type: 'not valid!' is not an FME")
