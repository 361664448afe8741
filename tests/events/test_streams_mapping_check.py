"""The mapping's ``streams`` section: ``check-mapping`` accepts a complete one and names what is
wrong with any other, as the function refuses to start on it (503 ``mapping_invalid``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fs2split.__main__ import main
from fs2split.app import handle
from fs2split.http_types import Request

COMPLETE = {"name": "what.action", "timestamp": "what.at", "uid": "who.id", "properties": "what.details"}


@pytest.fixture(autouse=True)
def no_mapping_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FS2SPLIT_MAPPING", raising=False)
    monkeypatch.delenv("FS2SPLIT_MAPPING_FILE", raising=False)


def check(tmp_path: Path, streams: Any) -> int:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"streams": streams}))
    return main(["check-mapping", str(path)])


def test_a_complete_streams_section_passes_and_is_summarised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(tmp_path, COMPLETE) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "streams: name=what.action, timestamp=what.at, uid=who.id, properties=what.details"
    )


@pytest.mark.parametrize("missing", ["name", "timestamp", "uid"])
def test_a_streams_section_without_a_required_path_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    streams = {k: v for k, v in COMPLETE.items() if k != missing}

    assert check(tmp_path, streams) == 1
    assert f"streams.{missing}: is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("streams", "where"),
    [
        ({**COMPLETE, "user": "who.id"}, "streams.user: unknown key"),
        ({**COMPLETE, "uid": "who..id"}, "streams.uid"),
        ({**COMPLETE, "name": 7}, "streams.name"),
        ({**COMPLETE, "properties": "what.*"}, "streams.properties"),
        (["what.action"], "streams: must be a mapping"),
    ],
)
def test_a_malformed_streams_section_fails_naming_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], streams: Any, where: str
) -> None:
    assert check(tmp_path, streams) == 1
    assert where in capsys.readouterr().err


def test_the_function_answers_503_mapping_invalid_for_an_incomplete_streams_section(make_instance: Any) -> None:
    instance = make_instance(FS2SPLIT_MAPPING=json.dumps({"streams": {"name": "a"}}))

    response = handle(Request("POST", "/fullstory", {}, {}, b'{"a": "x"}'), instance)

    assert (response.status, response.body["reason"]) == (503, "mapping_invalid")
    assert "streams.timestamp" in response.body["message"]
