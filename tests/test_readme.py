"""The README is the front door and the docs site holds the rest; both are contracts. The README's two
commands come first, the outcomes table (docs/outcomes.md) and the settings table (docs/settings.md) stay
true to the code, and the site builds with no dead link."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fs2split.outcome import STATUS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def code_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```(?:sh|bash)?\n(.*?)```", text, flags=re.S)]


def test_readme_opens_with_the_run_command_then_the_test_command() -> None:
    assert code_blocks(README)[:2] == ["./dev serve", "./dev test"]


def test_readme_is_a_front_door_of_at_most_about_250_lines() -> None:
    assert len(README.splitlines()) <= 250


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\./dev test\b", ci, flags=re.M)


def test_every_body_the_readme_sends_exists() -> None:
    sent = re.findall(r"(?:-d|--data-binary) @(\S+)", README) + re.findall(r"gzip -c (\S+)", README)
    assert sent
    for path in sent:
        if path != "-":
            assert (ROOT / path).is_file(), path


def test_every_docs_page_the_readme_names_exists() -> None:
    named = re.findall(r"`(docs/[\w./-]+\.md)`", README)
    assert named
    for path in named:
        assert (ROOT / path).is_file(), path


def test_every_outcome_is_documented_with_its_status() -> None:
    text = (DOCS / "outcomes.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.M))
    assert {reason.value: str(status) for reason, status in STATUS.items()} == {
        reason: rows.get(reason) for reason in (r.value for r in STATUS)
    }


def test_every_setting_the_code_reads_is_in_the_settings_table() -> None:
    code = "\n".join(p.read_text() for p in (ROOT / "fs2split").rglob("*.py"))
    read = set(re.findall(r'"((?:SPLIT|FULLSTORY|FS2SPLIT)_[A-Z_]+|LOG_LEVEL)"', code))
    table = set(re.findall(r"^\| `([A-Z0-9_<>]+)` \|", (DOCS / "settings.md").read_text(), flags=re.M))
    assert read - table == set()


def test_the_docs_site_builds_strictly_with_no_dead_link(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    assert (tmp_path / "site" / "settings" / "index.html").is_file()


def test_every_docs_page_has_one_title() -> None:
    for page in DOCS.glob("*.md"):
        prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        assert len(re.findall(r"^# ", prose, flags=re.M)) == 1, page.name


def test_dev_test_builds_the_docs_strictly_and_loudly() -> None:
    [line] = [line for line in (ROOT / "dev").read_text().splitlines() if "mkdocs build" in line]

    assert "--strict" in line
    assert "--quiet" not in line.split("#")[0]  # --quiet hides the warnings --strict counts
