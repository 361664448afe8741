"""Loading a mapping: find it, read it (JSON or YAML), and validate it into an `EventMapping`.

Read once per instance, from the first of:

1. ``FS2SPLIT_MAPPING``: the mapping itself, as JSON;
2. ``FS2SPLIT_MAPPING_FILE``: the path of a YAML or JSON file (``.json`` is read as JSON, anything
   else as YAML, which also reads JSON);
3. ``fs2split.yaml`` beside ``main.py``, if present.

Without any of them there is no mapping and fs2split behaves exactly as the core does. Imported only
when one of them is present (`mapping_source.configured`), so a function without a mapping never
loads this module or YAML.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fs2split.events.event_type import is_valid_event_type
from fs2split.events.mapping import (
    GLOB_CHARS,
    EventMapping,
    MappingError,
    Rule,
    glob_problem,
    shown,
)
from fs2split.events.mapping_source import DEFAULT_DIR, FILE_VARIABLE, INLINE_VARIABLE, LEGACY_FILE
from fs2split.events.streams import StreamPaths

MAX_FILE_BYTES = 1_000_000  # a mapping is a few lines; anything this large is the wrong file
_TOP_KEYS = ("events", "drop", "properties", "streams")
_RULE_KEYS = ("event_type", "value", "traffic_type", "key")
_PROPERTY_KEYS = ("include", "exclude", "redact")
_STREAMS_KEYS = ("name", "timestamp", "uid", "properties")
_STREAMS_REQUIRED = ("name", "timestamp", "uid")


def load(env: Mapping[str, str] | None = None, *, legacy_dir: Path | None = DEFAULT_DIR) -> EventMapping | None:
    """The mapping the function uses, or None when none is configured. Raises MappingError."""
    e = os.environ if env is None else env
    inline = e.get(INLINE_VARIABLE, "").strip()
    file_name = e.get(FILE_VARIABLE, "").strip()
    if inline:
        notes = (f"{FILE_VARIABLE} is ignored: {INLINE_VARIABLE} is set and wins",) if file_name else ()
        return parse(_json(inline, INLINE_VARIABLE), INLINE_VARIABLE, notes=notes)
    if file_name:
        return load_file(Path(file_name), source=f"{FILE_VARIABLE}={file_name}")
    if legacy_dir is not None:
        legacy = legacy_dir / LEGACY_FILE
        if legacy.is_file():
            return load_file(legacy)
    return None


def load_file(path: Path, *, source: str | None = None) -> EventMapping:
    """A mapping from a YAML or JSON file. Raises MappingError."""
    source = source or str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MappingError(source, "file", "does not exist") from None
    except OSError as error:
        raise MappingError(source, "file", f"cannot be read ({error.strerror or type(error).__name__})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise MappingError(source, "file", f"is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MappingError(source, "file", "is not UTF-8") from None
    document = _json(text, source) if path.suffix.lower() == ".json" else _yaml(text, source)
    return parse(document, source)


def parse(document: Any, source: str, *, notes: tuple[str, ...] = ()) -> EventMapping:
    """Validate a loaded document into a mapping. Raises MappingError on the first problem."""
    if document is None:  # an empty file: a mapping that changes nothing
        document = {}
    if not isinstance(document, dict):
        raise MappingError(source, "(top level)", f"must be a mapping with {', '.join(_TOP_KEYS)}")
    _known_keys(document, _TOP_KEYS, "", source)
    exact, globs = _rules(document.get("events"), source)
    drop = _globs(document.get("drop"), "drop", source)
    properties = document.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise MappingError(source, "properties", f"must be a mapping with {', '.join(_PROPERTY_KEYS)}")
    _known_keys(properties, _PROPERTY_KEYS, "properties.", source)
    return EventMapping(
        source=source,
        exact=exact,
        globs=globs,
        drop=drop,
        include=_globs(properties.get("include"), "properties.include", source, default=("*",)),
        exclude=_globs(properties.get("exclude"), "properties.exclude", source),
        redact=_globs(properties.get("redact"), "properties.redact", source),
        notes=notes,
        streams=_streams(document.get("streams"), source),
    )


def _streams(section: Any, source: str) -> StreamPaths | None:
    """Dot paths into a Stream body; name, timestamp and uid are required, properties is optional."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise MappingError(source, "streams", f"must be a mapping of {', '.join(_STREAMS_KEYS)} to dot paths")
    _known_keys(section, _STREAMS_KEYS, "streams.", source)
    for key in _STREAMS_REQUIRED:
        if section.get(key) is None:
            raise MappingError(source, f"streams.{key}", "is required: the dot path where each Stream body holds it")
    paths = {key: _path(section.get(key), f"streams.{key}", source) for key in _STREAMS_KEYS}
    return StreamPaths(
        name=paths["name"] or "",
        timestamp=paths["timestamp"] or "",
        uid=paths["uid"] or "",
        properties=paths["properties"],
    )


def _rules(events: Any, source: str) -> tuple[dict[str, Rule], tuple[Rule, ...]]:
    if events is None:
        return {}, ()
    if not isinstance(events, dict):
        raise MappingError(source, "events", "must be a mapping of FullStory event names to rules")
    exact: dict[str, Rule] = {}
    globs: list[Rule] = []
    for name, body in events.items():
        if not isinstance(name, str) or not name:
            raise MappingError(source, f"events.{shown(name)}", "event names must be non-empty strings (quote it)")
        where = f"events.{json.dumps(name, ensure_ascii=False)}"
        if GLOB_CHARS & set(name):
            problem = glob_problem(name)
            if problem:
                raise MappingError(source, where, problem)
        if not isinstance(body, dict):
            raise MappingError(source, where, f"must be a mapping of {', '.join(_RULE_KEYS)} (write {{}} for none)")
        _known_keys(body, _RULE_KEYS, f"{where}.", source)
        rule = Rule(
            name=name,
            event_type=_event_type(body.get("event_type"), f"{where}.event_type", source),
            traffic_type=_traffic_type(body.get("traffic_type"), f"{where}.traffic_type", source),
            key=_path(body.get("key"), f"{where}.key", source),
            value=_path(body.get("value"), f"{where}.value", source),
        )
        # A name is always tried exactly first, so a literal name holding "[" still works.
        exact[name] = rule
        if GLOB_CHARS & set(name):
            globs.append(rule)
    return exact, tuple(globs)


def _event_type(value: Any, where: str, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_valid_event_type(value):
        raise MappingError(
            source,
            where,
            f"{shown(value)} is not an FME event type (1-80 of A-Z a-z 0-9 - _ . : starting with a letter or digit)",
        )
    return value


def _traffic_type(value: Any, where: str, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.lower() or value != value.strip():
        raise MappingError(source, where, f"must be a non-empty lowercase string, got {shown(value)}")
    return value


def _path(value: Any, where: str, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MappingError(source, where, f"must be a dot path string such as order.total, got {shown(value)}")
    if not value or any(not segment for segment in value.split(".")):
        raise MappingError(source, where, f"{shown(value)} is not a dot path (empty segment)")
    if GLOB_CHARS & set(value):
        raise MappingError(source, where, f"{shown(value)} is a glob; a path names one property")
    return value


def _globs(value: Any, where: str, source: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    if value is None:
        return default
    if not isinstance(value, list):
        raise MappingError(source, where, f"must be a list of globs, got {shown(value)}")
    for index, glob in enumerate(value):
        problem = glob_problem(glob)
        if problem:
            raise MappingError(source, f"{where}[{index}]", problem)
    return tuple(value)


def _known_keys(document: dict[Any, Any], allowed: tuple[str, ...], prefix: str, source: str) -> None:
    for key in document:
        if key not in allowed:
            import difflib  # only on this error path: 2 ms a cold start need not pay

            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(allowed)}"
            raise MappingError(source, f"{prefix}{shown(key, quote=False)}", f"unknown key{hint}")


def _json(text: str, source: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for key, value in pairs:
            if key in document:
                raise ValueError(f"duplicate key {key!r}")
            document[key] = value
        return document

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as error:
        raise MappingError(source, f"line {error.lineno}, column {error.colno}", f"not JSON: {error.msg}") from None
    except ValueError as error:
        raise MappingError(source, "(document)", str(error)) from None


def _yaml(text: str, source: str) -> Any:
    try:
        import yaml  # only here: most functions never read a YAML file, so cold starts skip the import
    except ImportError:
        raise MappingError(source, "file", "is read as YAML, but PyYAML is not installed (name it .json)") from None

    class UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key written twice, which PyYAML would silently overwrite."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shown(key)}", key_node.start_mark
                    )
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        raise MappingError(source, where, f"not YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise MappingError(source, "(document)", f"not YAML: {error}") from None
