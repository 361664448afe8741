"""``python -m fs2split sign FILE``: the header and the curl line a person uses to try a signed webhook by hand.
The signature is judged by the function itself (a signed request through the router), not recomputed here."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from fs2split.__main__ import main
from fs2split.app import handle
from fs2split.http_types import Request

ROOT = Path(__file__).resolve().parents[2]
BODY = ROOT / "examples" / "fullstory-custom-event.json"
SECRET = "whsec-for-the-sign-test"


@pytest.fixture(autouse=True)
def no_secret_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FULLSTORY_WEBHOOK_SECRET", "FULLSTORY_WEBHOOK_SECRET_SECRET"):
        monkeypatch.delenv(name, raising=False)


def printed(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, list[str], str]:
    status = main(["sign", *arguments])
    out = capsys.readouterr()
    return status, out.out.splitlines(), out.err


def signed(header: str) -> Request:
    return Request("POST", "/fullstory", {"fullstory-signature": header_of(header)}, {}, BODY.read_bytes())


def header_of(line: str) -> str:
    name, _, value = line.partition(": ")
    assert name == "Fullstory-Signature"
    return value


def test_the_printed_header_is_accepted_by_a_function_holding_the_secret(
    make_instance: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", SECRET)
    status, (header, _), _ = printed(capsys, str(BODY))
    bridge = make_instance(FULLSTORY_WEBHOOK_SECRET=SECRET)  # type: ignore[operator]

    answer = handle(signed(header), bridge)

    assert (status, answer.status, answer.body["reason"]) == (0, 200, "dry_run")


def test_the_secret_option_wins_over_the_environment(
    make_instance: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", "another-secret")
    _, (header, _), _ = printed(capsys, str(BODY), "--secret", SECRET)
    bridge = make_instance(FULLSTORY_WEBHOOK_SECRET=SECRET)  # type: ignore[operator]

    answer = handle(signed(header), bridge)

    assert answer.body["reason"] == "dry_run"


def test_the_curl_line_sends_the_file_byte_for_byte_with_the_header_to_the_local_function(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, (header, curl), _ = printed(capsys, str(BODY), "--secret", SECRET)

    words = shlex.split(curl)
    assert words[:4] == ["curl", "-s", "-H", header]
    assert words[4:] == ["--data-binary", f"@{BODY}", "http://127.0.0.1:8080/fullstory"]


def test_the_header_carries_the_org_and_the_current_time(capsys: pytest.CaptureFixture[str]) -> None:
    _, (header, _), _ = printed(capsys, str(BODY), "--secret", SECRET, "--org", "o-ACME")

    parts = dict(part.split(":", 1) for part in header_of(header).split(","))
    assert parts["o"] == "o-ACME"
    assert abs(int(parts["t"]) - time.time()) < 60


def test_without_a_secret_it_exits_2_and_says_where_to_put_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines, err = printed(capsys, str(BODY))

    assert (status, lines) == (2, [])
    assert "FULLSTORY_WEBHOOK_SECRET" in err


def test_a_missing_file_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, lines, err = printed(capsys, str(tmp_path / "absent.json"), "--secret", SECRET)

    assert (status, lines, len(err.splitlines())) == (2, [], 1)


def test_the_secret_never_appears_in_what_it_prints(capsys: pytest.CaptureFixture[str]) -> None:
    _, lines, err = printed(capsys, str(BODY), "--secret", SECRET)

    assert SECRET not in "\n".join(lines) + err
