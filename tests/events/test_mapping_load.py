"""Where the mapping comes from, and every way it can be invalid: one line naming source, key and problem."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fs2split.events import mapping, mapping_file
from fs2split.events.mapping import EventMapping, MappingError
from fs2split.instance import Instance

ROOT = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).parent
CHECKOUT_YAML = EVENTS / "mapping-checkout.yaml"
CHECKOUT_JSON = EVENTS / "mapping-checkout.json"


def inline(document: Any) -> dict[str, str]:
    return {"FS2SPLIT_MAPPING": json.dumps(document)}


def error_of(env: dict[str, str], legacy_dir: Path | None = None) -> str:
    with pytest.raises(MappingError) as raised:
        mapping_file.load(env, legacy_dir=legacy_dir)
    return str(raised.value)


def loaded(env: dict[str, str], legacy_dir: Path | None = None) -> EventMapping:
    result = mapping_file.load(env, legacy_dir=legacy_dir)
    assert result is not None
    return result


# --- sources -------------------------------------------------------------------------------------------


def test_no_source_means_no_mapping(tmp_path: Path) -> None:
    assert mapping_file.load({}, legacy_dir=tmp_path) is None


def test_blank_variables_mean_no_mapping(tmp_path: Path) -> None:
    assert mapping_file.load({"FS2SPLIT_MAPPING": "  ", "FS2SPLIT_MAPPING_FILE": ""}, legacy_dir=tmp_path) is None


def test_inline_json_is_read_from_fs2split_mapping() -> None:
    result = loaded(inline({"drop": ["debug_*"]}))

    assert (result.source, result.drop) == ("FS2SPLIT_MAPPING", ("debug_*",))


def test_yaml_file_is_read_from_fs2split_mapping_file() -> None:
    result = loaded({"FS2SPLIT_MAPPING_FILE": str(CHECKOUT_YAML)})

    assert result.rule_for("Plan Upgraded") == mapping.Rule("Plan *", traffic_type="account", key="account.id_str")


def test_json_file_reads_the_same_as_the_yaml_file() -> None:
    from_json = loaded({"FS2SPLIT_MAPPING_FILE": str(CHECKOUT_JSON)})
    from_yaml = loaded({"FS2SPLIT_MAPPING_FILE": str(CHECKOUT_YAML)})

    assert from_json.summary() | {"source": ""} == from_yaml.summary() | {"source": ""}
    assert (from_json.exact, from_json.globs, from_json.redact) == (from_yaml.exact, from_yaml.globs, from_yaml.redact)


def test_fs2split_yaml_beside_main_py_is_read(tmp_path: Path) -> None:
    (tmp_path / "fs2split.yaml").write_text("drop: [debug_*]\n")

    result = loaded({}, legacy_dir=tmp_path)

    assert (result.source, result.drop) == (str(tmp_path / "fs2split.yaml"), ("debug_*",))


def test_instance_reads_fs2split_yaml_from_its_mapping_dir(tmp_path: Path) -> None:
    (tmp_path / "fs2split.yaml").write_text("drop: [debug_*]\n")

    instance = Instance.from_env({}, mapping_dir=tmp_path)

    assert instance.mapping is not None
    assert instance.mapping.drop == ("debug_*",)


def test_environment_wins_over_fs2split_yaml(tmp_path: Path) -> None:
    (tmp_path / "fs2split.yaml").write_text("drop: [from_file]\n")

    assert loaded(inline({"drop": ["from_env"]}), legacy_dir=tmp_path).drop == ("from_env",)


def test_inline_mapping_wins_over_the_file_and_says_so() -> None:
    env = {**inline({"drop": ["from_env"]}), "FS2SPLIT_MAPPING_FILE": str(CHECKOUT_YAML)}

    result = loaded(env)

    assert result.drop == ("from_env",)
    assert result.notes == ("FS2SPLIT_MAPPING_FILE is ignored: FS2SPLIT_MAPPING is set and wins",)


def test_an_empty_file_is_a_mapping_that_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")

    result = loaded({"FS2SPLIT_MAPPING_FILE": str(tmp_path / "empty.yaml")})

    assert (result.exact, result.drop, result.include, result.exclude, result.redact) == ({}, (), ("*",), (), ())


def test_the_documented_example_is_valid() -> None:
    result = mapping_file.load_file(ROOT / "examples" / "fs2split.yaml")

    assert result.summary()["rules"] >= 3


def test_every_yaml_block_in_the_mapping_docs_is_valid(tmp_path: Path) -> None:
    section = (ROOT / "docs" / "mapping.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)

    assert len(blocks) >= 4
    for index, block in enumerate(blocks):
        (tmp_path / f"block-{index}.yaml").write_text(block)
        mapping_file.load_file(tmp_path / f"block-{index}.yaml")


# --- every invalid mapping: (document, the key named, the problem) ----------------------------------------

INVALID: list[tuple[str, Any, str, str]] = [
    ("top level not a mapping", ["events"], "(top level)", "must be a mapping"),
    ("unknown top-level key", {"event": {}}, "event", "unknown key; did you mean 'events'?"),
    ("unknown rule key", {"events": {"A": {"valeu": "x"}}}, 'events."A".valeu', "did you mean 'value'?"),
    ("unknown properties key", {"properties": {"redacted": []}}, "properties.redacted", "did you mean 'redact'?"),
    ("events not a mapping", {"events": ["A"]}, "events", "must be a mapping"),
    ("rule not a mapping", {"events": {"A": "checkout"}}, 'events."A"', "must be a mapping"),
    ("empty event name", {"events": {"": {}}}, "events.''", "non-empty strings"),
    ("event name with unbalanced [", {"events": {"Plan [": {}}}, 'events."Plan ["', "has no closing ']'"),
    ("event_type with a space", {"events": {"A": {"event_type": "a b"}}}, 'events."A".event_type', "not an FME"),
    ("event_type too long", {"events": {"A": {"event_type": "e" * 81}}}, 'events."A".event_type', "not an FME"),
    ("event_type not a string", {"events": {"A": {"event_type": 7}}}, 'events."A".event_type', "not an FME"),
    ("traffic_type upper case", {"events": {"A": {"traffic_type": "Account"}}}, 'events."A".traffic_type', "lowercase"),
    ("traffic_type empty", {"events": {"A": {"traffic_type": ""}}}, 'events."A".traffic_type', "non-empty"),
    ("traffic_type padded", {"events": {"A": {"traffic_type": " account"}}}, 'events."A".traffic_type', "lowercase"),
    ("traffic_type not a string", {"events": {"A": {"traffic_type": 1}}}, 'events."A".traffic_type', "string"),
    ("value not a string", {"events": {"A": {"value": 5}}}, 'events."A".value', "dot path string"),
    ("key not a string", {"events": {"A": {"key": ["account", "id"]}}}, 'events."A".key', "dot path string"),
    ("path with an empty segment", {"events": {"A": {"key": "account..id"}}}, 'events."A".key', "empty segment"),
    ("path that is a glob", {"events": {"A": {"value": "order.*"}}}, 'events."A".value', "is a glob"),
    ("drop not a list", {"drop": "debug_*"}, "drop", "must be a list of globs"),
    ("drop glob not a string", {"drop": [5]}, "drop[0]", "must be a string glob"),
    ("drop glob with unbalanced [", {"drop": ["debug_[x"]}, "drop[0]", "has no closing ']'"),
    ("properties not a mapping", {"properties": ["*"]}, "properties", "must be a mapping"),
    ("include glob empty", {"properties": {"include": [""]}}, "properties.include[0]", "empty glob"),
    ("exclude glob reversed range", {"properties": {"exclude": ["[z-a]*"]}}, "properties.exclude[0]", "reversed"),
    ("redact glob unbalanced [", {"properties": {"redact": ["*[phone"]}}, "properties.redact[0]", "no closing"),
]


@pytest.mark.parametrize(("document", "where", "problem"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_mapping_is_one_line_naming_source_key_and_problem(document: Any, where: str, problem: str) -> None:
    line = error_of(inline(document))

    assert line.startswith(f"invalid mapping (FS2SPLIT_MAPPING): {where}: ")
    assert problem in line
    assert "\n" not in line


def test_inline_mapping_that_is_not_json_is_invalid() -> None:
    line = error_of({"FS2SPLIT_MAPPING": "events: {}"})

    assert line.startswith("invalid mapping (FS2SPLIT_MAPPING): line 1, column 1: not JSON")


def test_inline_mapping_with_a_duplicate_key_is_invalid() -> None:
    line = error_of({"FS2SPLIT_MAPPING": '{"drop": [], "drop": ["x"]}'})

    assert "duplicate key 'drop'" in line


def test_missing_mapping_file_is_invalid_and_named() -> None:
    line = error_of({"FS2SPLIT_MAPPING_FILE": "/nonexistent/fs2split.yaml"})

    assert line == "invalid mapping (FS2SPLIT_MAPPING_FILE=/nonexistent/fs2split.yaml): file: does not exist"


def test_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("events:\n  A: {event_type: x\n")

    line = error_of({"FS2SPLIT_MAPPING_FILE": str(path)})

    assert line.startswith(f"invalid mapping (FS2SPLIT_MAPPING_FILE={path}): line 3, column 1: not YAML")
    assert "\n" not in line


def test_yaml_duplicate_event_name_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("events:\n  A: {value: a}\n  A: {value: b}\n")

    line = error_of({"FS2SPLIT_MAPPING_FILE": str(path)})

    assert line == f"invalid mapping (FS2SPLIT_MAPPING_FILE={path}): line 3, column 3: not YAML: duplicate key 'A'"


def test_yaml_event_name_that_is_not_a_string_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "number.yaml"
    path.write_text("events:\n  404: {}\n")

    line = error_of({"FS2SPLIT_MAPPING_FILE": str(path)})

    assert "events.404: event names must be non-empty strings (quote it)" in line


def test_json_file_syntax_error_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"drop": [}')

    assert "line 1, column 11: not JSON" in error_of({"FS2SPLIT_MAPPING_FILE": str(path)})


def test_file_that_is_not_utf8_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("drop: [caf\xe9]\n".encode("latin-1"))

    assert error_of({"FS2SPLIT_MAPPING_FILE": str(path)}).endswith("file: is not UTF-8")


def test_file_larger_than_a_megabyte_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("#" * (mapping_file.MAX_FILE_BYTES + 1))

    assert "file: is larger than" in error_of({"FS2SPLIT_MAPPING_FILE": str(path)})


def test_invalid_fs2split_yaml_names_its_path(tmp_path: Path) -> None:
    (tmp_path / "fs2split.yaml").write_text("drop: debug\n")

    line = error_of({}, legacy_dir=tmp_path)

    assert line.startswith(f"invalid mapping ({tmp_path / 'fs2split.yaml'}): drop: ")


def test_literal_event_name_with_a_bracket_can_be_written_as_a_glob() -> None:
    result = loaded(inline({"events": {"Clicked [[]Buy]": {"event_type": "clicked_buy"}}}))

    assert result.rule_for("Clicked [Buy]") is not None
