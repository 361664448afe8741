"""Every request body under ``examples/`` gets, from the served function (the real functions-framework CLI,
no keys), the outcome docs/examples.md promises for it; and every file there is either listed in that table or
named below as not a request body. Starts a real server: ``e2e``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TABLE = (ROOT / "docs" / "examples.md").read_text()
ROW = re.compile(r"^\| `(examples/[^`]+)` \| `POST (/[\w/]*)` \| (\d{3}) `([a-z_]+)` \|", re.M)
# Files under examples/ that are not request bodies: a mapping file, and the browser recipe.
NOT_BODIES = {
    "examples/fs2split.yaml",
    "examples/fullstory-stream-mapping.json",  # a template pasted into FullStory, not a request body
    "examples/browser/build.mjs",
    "examples/browser/src/listener.js",
    "examples/browser/split-evaluation-listener.js",
    "examples/browser/split-evaluation-listener.mjs",
}
PROMISED = {path: (route, int(status), reason) for path, route, status, reason in ROW.findall(TABLE)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPLIT_", "FULLSTORY_", "FS2SPLIT_"))}
    cli = Path(sys.executable).parent / "functions-framework"
    process = subprocess.Popen(
        [str(cli), "--target", "fs2split", "--source", "main.py", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_every_file_under_examples_is_a_listed_body_or_named_as_not_a_body() -> None:
    files = {path.relative_to(ROOT).as_posix() for path in EXAMPLES.rglob("*") if path.is_file()}

    assert files - NOT_BODIES == set(PROMISED)


@pytest.mark.parametrize("path", sorted(PROMISED))
def test_each_example_body_gets_the_outcome_the_docs_promise(served: str, path: str) -> None:
    route, status, reason = PROMISED[path]

    answer = requests.post(served + route, data=(ROOT / path).read_bytes(), timeout=10)

    assert (answer.status_code, answer.json()["reason"]) == (status, reason)


def test_every_body_the_readme_or_the_docs_send_is_a_listed_example() -> None:
    texts = [(ROOT / "README.md").read_text(), *(page.read_text() for page in (ROOT / "docs").glob("*.md"))]
    sent = {path for text in texts for path in re.findall(r"(?:@|gzip -c )(examples/[\w./-]+)", text)}

    assert sent
    assert sent <= set(PROMISED)
