"""A newcomer's first five minutes, word for word, on a fresh clone: the README's first command
(``./dev serve``, which makes its own virtualenv from requirements.txt and prints one line when ready), then
every command of its tour, each checked against the outcome the README promises just above it. The one
change is the port: the tour's 8080 becomes a free port, so that the test never collides with anything.
``./dev test`` (the second command) is what runs this test, so it is not run again here.
Starts real processes and builds a virtualenv (pip reaches the package index or its cache): ``e2e``."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fs2split.outcome import STATUS, Reason
from tests.support.clone import ROOT, fresh_clone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

README = (ROOT / "README.md").read_text()
TOUR = README[README.index("## A five-minute tour") : README.index("\n## ", README.index("## A five-minute tour") + 3)]
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
PROMISE = re.compile(r"(\d{3}) `([a-z_]+)`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevServe:
    """``./dev serve`` (or a README line that runs it) in its own process group, stopped with it."""

    def __init__(self, clone: Path, command: str, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPLIT_", "FULLSTORY_", "FS2SPLIT_"))}
        env.pop("VIRTUAL_ENV", None)
        self.process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=clone,
            env={**env, "PORT": str(port)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(600):
            self.stop()
            raise AssertionError("./dev serve never said it was ready:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("fs2split ready at"):
                self.ready.set()
        self.ready.set()  # ended: the wait returns, and the test sees no ready line

    @property
    def ready_line(self) -> str:
        return next((line for line in self.lines if line.startswith("fs2split ready at")), "")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


def shell(clone: Path, command: str) -> str:
    run = subprocess.run(["bash", "-c", command], cwd=clone, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, (command, run.stderr)
    return run.stdout


def outcome(answer: str) -> tuple[int, str]:
    reason = json.loads(answer)["reason"]
    return STATUS[Reason(reason)], reason


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_clone(tmp_path_factory.mktemp("fresh-clone"))


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def served(clone: Path, port: int) -> Iterator[DevServe]:
    blocks = [block.strip() for block in BLOCK.findall(README)]
    assert blocks[:2] == ["./dev serve", "./dev test"]
    server = DevServe(clone, blocks[0], port)
    yield server
    server.stop()


def test_dev_serve_on_a_fresh_clone_prints_one_ready_line_with_the_url_and_a_curl_to_try(
    served: DevServe, port: int
) -> None:
    ready = [line for line in served.lines if line.startswith("fs2split ready at")]

    assert len(ready) == 1
    assert f"http://127.0.0.1:{port}" in ready[0]
    assert "curl -s --data-binary @examples/fullstory-custom-event.json" in ready[0]
    assert "nothing is sent" in ready[0]


def test_every_unsigned_command_of_the_tour_gets_the_outcome_the_readme_promises(
    served: DevServe, clone: Path, port: int
) -> None:
    checked = 0
    position = 0
    for match in BLOCK.finditer(TOUR):
        promised = PROMISE.findall(TOUR[position : match.start()])
        position = match.end()
        commands = match.group(1).strip().splitlines()
        if any("./dev serve" in command for command in commands):
            continue  # the signed step restarts the server: its own test
        assert promised, f"no promised outcome above {commands}"
        status, reason = promised[-1]
        for command in commands:
            answer = shell(clone, command.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
            assert outcome(answer) == (int(status), reason), command
            checked += 1

    assert checked >= 6


def test_the_signed_step_of_the_tour_is_accepted_and_a_changed_body_is_refused(
    served: DevServe, clone: Path, port: int
) -> None:
    [block] = [b for b in BLOCK.findall(TOUR) if "fs2split sign" in b]
    serve, sign = block.strip().splitlines()
    served.stop()
    signed = DevServe(clone, serve, port)
    try:
        header, curl = shell(clone, sign).strip().splitlines()
        assert header.startswith("Fullstory-Signature: o:")
        assert curl.startswith("curl -s -H 'Fullstory-Signature: ")
        assert "--data-binary @" in curl

        accepted = shell(clone, curl.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
        (clone / "changed.json").write_bytes((clone / "examples/fullstory-custom-event.json").read_bytes() + b" ")
        refused = shell(
            clone, curl.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace(
                "@examples/fullstory-custom-event.json", "@changed.json"
            )
        )
    finally:
        signed.stop()

    assert outcome(accepted) == (200, "dry_run")
    assert outcome(refused) == (401, "signature_invalid")
