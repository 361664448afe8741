"""The README is a contract: its two commands, its outcome table and its settings table must
stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from fs2split.outcome import STATUS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```(?:sh|bash)?\n(.*?)```", text, flags=re.S)]


def test_readme_opens_with_the_run_command_then_the_test_command() -> None:
    assert code_blocks(README)[:2] == ["./dev serve", "./dev test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\./dev test\b", ci, flags=re.M)


def test_readme_curl_example_exists() -> None:
    for path in re.findall(r"-d @(\S+)", README):
        assert (ROOT / path).is_file(), path


def test_every_outcome_is_documented_with_its_status() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", README, flags=re.M))
    assert {reason.value: str(status) for reason, status in STATUS.items()} == {
        reason: rows.get(reason) for reason in (r.value for r in STATUS)
    }


def test_every_setting_the_code_reads_is_in_the_settings_table() -> None:
    code = "\n".join(p.read_text() for p in (ROOT / "fs2split").rglob("*.py"))
    read = set(re.findall(r'"((?:SPLIT|FULLSTORY|FS2SPLIT)_[A-Z_]+|LOG_LEVEL)"', code))
    table = set(re.findall(r"^\| `([A-Z0-9_<>]+)` \|", README, flags=re.M))
    assert read - table == set()
