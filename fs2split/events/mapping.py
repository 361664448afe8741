"""The mapping: one small, validated file that says how FullStory events become FME events.

Loaded by `fs2split.events.mapping_file`; this module matches and applies it.

Schema (every key optional; unknown keys are errors)::

    events:                    # keyed by FullStory event name: exact names win, then the first glob in file order
      "Checkout Completed": {event_type: checkout_completed, value: order.total}
      "Plan *": {traffic_type: account, key: account.id}
    drop: ["debug_*"]          # globs of event names never sent
    properties: {include: ["*"], exclude: ["*email*"], redact: ["*phone*"]}
    streams: {name: event.type, timestamp: event.time, uid: who.id, properties: event.props}
                               # dot paths into a Stream body of any shape (see `fs2split.events.streams`)

Names, as the rest of fs2split sends them, are flattened dot paths that keep FullStory's type
suffix (``order.total_real`` in a v1 webhook, ``order.total`` in a Streams body). Paths and
property globs match a name with or without that suffix, on the last segment only:

- as sent: ``order.total_real`` matches ``order.total_real``;
- without the suffix: ``order.total`` matches ``order.total_real``;
- a name that carries no suffix (Streams) also matches as the name FullStory would give it in a v1
  webhook, inferring the suffix from the value (strings ``_str``, booleans ``_bool``, every number
  ``_real``, lists ``_strs``/``_reals``/``_bools``): ``order.total_real`` matches a Streams
  ``order.total`` of ``120.5``; ``account.id_str`` does not match a Streams ``account.id`` of ``42``.

So a Streams event and the v1 webhook of the same call match exactly the same paths and globs.

Intermediate segments are compared as written: FullStory suffixes only leaves, never the keys of
nested objects. Event-name globs and paths are case-sensitive; property globs (include, exclude,
redact) ignore case, so ``*email*`` also keeps ``customerEmail_str`` out of FME.

A glob is bad when it is empty, has a ``[`` without its ``]`` (``fnmatch`` would silently read it
as a literal), or holds a reversed range such as ``[z-a]`` (which matches nothing).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from fs2split.events import fme_event
from fs2split.events.mapped import Mapped
from fs2split.outcome import Outcome, Reason

if TYPE_CHECKING:
    from fs2split.events.streams import StreamPaths

REDACTED = "[redacted]"

SUFFIXES = ("_str", "_int", "_real", "_date", "_bool", "_strs", "_ints", "_reals", "_dates", "_bools")
GLOB_CHARS = frozenset("*?[")
_MAX_DEPTH = 32  # as properties.flatten: deeper objects are not walked
_MAX_SHOWN = 80  # characters of a bad value quoted in an error line


class MappingError(ValueError):
    """The mapping cannot be used. ``str()`` is one line naming the source, the key and the problem."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source, self.where, self.problem = source, where, problem
        super().__init__(one_line(f"invalid mapping ({source}): {where}: {problem}"))


@dataclass(frozen=True)
class Rule:
    """What to do with the events whose name matches ``name`` (an exact event name or a glob)."""

    name: str
    event_type: str | None = None
    traffic_type: str | None = None
    key: str | None = None  # a path: the FME key comes from this property, not from the FullStory uid
    value: str | None = None  # a path: the FME value comes from this property, never from split.value


@dataclass(frozen=True)
class EventMapping:
    source: str
    exact: dict[str, Rule] = field(default_factory=dict)
    globs: tuple[Rule, ...] = ()
    drop: tuple[str, ...] = ()
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # harmless surprises worth a warning, e.g. a shadowed source
    streams: StreamPaths | None = None  # where a Stream body of any shape holds the event's parts

    def __post_init__(self) -> None:
        # Property globs ignore case: they are kept lower-case, and names are lowered to match them.
        for name in ("include", "exclude", "redact"):
            object.__setattr__(self, name, tuple(glob.lower() for glob in getattr(self, name)))

    def names_explicitly(self, property_name: str) -> bool:
        """Whether ``properties.include`` names this property itself, not through a glob such as ``*``."""
        return property_name.lower() in self.include

    def dropped_by(self, event_name: str) -> str | None:
        """The first ``drop`` glob matching the event name, or None."""
        return next((glob for glob in self.drop if fnmatchcase(event_name, glob)), None)

    def rule_for(self, event_name: str) -> Rule | None:
        """The exact rule for the name, else the first glob rule in file order that matches."""
        exact = self.exact.get(event_name)
        if exact is not None:
            return exact
        return next((rule for rule in self.globs if fnmatchcase(event_name, rule.name)), None)

    def apply(self, event_name: str, properties: dict[str, Any]) -> Mapped | Outcome:
        """The event rule, then the property filters. An Outcome when the rule's key is missing."""
        rule = self.rule_for(event_name)
        # Key and value are read before the filters: they may come from a property that is not sent.
        view = leaves(properties)
        log: dict[str, Any] = {"rule": rule.name if rule else None}
        key = None
        if rule and rule.key:
            found = lookup(view, rule.key, _MISSING)
            key = _as_key(found)
            if key is None:
                why = "has no such property" if found is _MISSING else "has no usable value there"
                return Outcome(
                    Reason.KEY_MISSING,
                    f"rule {rule.name[:100]!r} takes the key from {rule.key!r}, and the event {why}; not sent",
                    log={**log, "key_path": rule.key},
                )
        if rule and rule.value:
            value = fme_event.finite_number(lookup(view, rule.value))
            if value is None:
                log["value_missing"] = rule.value
        else:
            value = fme_event.default_value(view)
        sent, excluded, redacted = self.filter(properties)
        log.update(properties_excluded=excluded, properties_redacted=redacted)
        return Mapped(
            rule=rule,
            event_type=rule.event_type if rule else None,
            traffic_type=rule.traffic_type if rule else None,
            key=key,
            value_decided=True,
            value=value,
            properties=sent,
            log=log,
        )

    def filter(self, properties: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        """(properties to send, how many were excluded, how many redacted), still nested.

        Filtering comes before flattening, so excluded properties never take a place in FME's
        limits and never appear in the "trimmed" warning.
        """
        if self.include == ("*",) and not self.exclude and not self.redact:
            return properties, 0, 0
        counts = [0, 0]
        return self._prune(properties, "", 0, counts), counts[0], counts[1]

    def summary(self) -> dict[str, Any]:
        """Counts and the source, never property values: for /healthz and the CLI."""
        return {
            "source": self.source,
            "rules": len(self.exact),  # every rule is in exact; glob rules are in globs too
            "drop": len(self.drop),
            "include": len(self.include),
            "exclude": len(self.exclude),
            "redact": len(self.redact),
        }

    def _prune(self, node: dict[str, Any], prefix: str, depth: int, counts: list[int]) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for key, item in node.items():
            name = f"{prefix}{key}"
            if isinstance(item, dict) and item and depth < _MAX_DEPTH:
                inner = self._prune(item, f"{name}.", depth + 1, counts)
                if inner:  # an object whose properties were all excluded is not sent as "{}"
                    kept[key] = inner
                continue
            lowered = name.lower()
            if not _any_glob(lowered, item, self.include) or _any_glob(lowered, item, self.exclude):
                counts[0] += 1
            elif _any_glob(lowered, item, self.redact):
                counts[1] += 1
                kept[key] = REDACTED
            else:
                kept[key] = item
        return kept


# --- names, paths and globs -------------------------------------------------------------------------


_MISSING: Any = object()  # "no such property", apart from a property that is null


def leaves(properties: dict[str, Any]) -> dict[str, Any]:
    """Every flattened property name with its value as FullStory sent it, before any trimming."""
    return dict(_walk(properties, "", 0))


def lookup(view: dict[str, Any], path: str, default: Any = None) -> Any:
    """The value at a path in ``leaves()``: the name as sent wins, then the first name, in the
    event's order, equal up to a type suffix; ``default`` when none matches."""
    if path in view:
        return view[path]
    return next((value for name, value in view.items() if _matches(name, value, path, _equal)), default)


def glob_problem(pattern: Any) -> str | None:
    """Why a glob is unusable, or None."""
    if not isinstance(pattern, str):
        return f"must be a string glob, got {shown(pattern)}"
    if not pattern:
        return "must not be an empty glob"
    index = 0
    while index < len(pattern):
        if pattern[index] != "[":
            index += 1
            continue
        # The same scan as fnmatch.translate: "[!" negates, and a "]" right after "[" or "[!" is literal.
        end = index + 1
        if end < len(pattern) and pattern[end] == "!":
            end += 1
        if end < len(pattern) and pattern[end] == "]":
            end += 1
        while end < len(pattern) and pattern[end] != "]":
            end += 1
        if end >= len(pattern):
            return f"bad glob {shown(pattern)}: '[' at position {index} has no closing ']' (write [[] for a literal [)"
        reversed_range = _reversed_range(pattern[index + 1 : end].removeprefix("!"))
        if reversed_range:
            return f"bad glob {shown(pattern)}: the range {reversed_range!r} is reversed and matches nothing"
        index = end + 1
    return None


def _walk(value: dict[str, Any], prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
    # Names exactly as properties.flatten makes them; values untouched.
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item and depth < _MAX_DEPTH:
            yield from _walk(item, f"{name}.", depth + 1)
        else:
            yield name, item


def _matches(name: str, value: Any, pattern: str, same: Any) -> bool:
    """Whether a property name (with its value) matches a path or glob, with or without a suffix.

    A suffixed name also matches without its suffix; an unsuffixed name also matches as the name
    FullStory would give it in a v1 webhook. So a Streams name and its v1 twin match exactly the
    same patterns: both are tried as ``base`` and as ``base + suffix``.
    """
    if same(name, pattern):
        return True
    suffix = _suffix_of(name)
    if suffix:
        return bool(same(name[: -len(suffix)], pattern))
    inferred = _inferred_suffix(value)
    return inferred is not None and bool(same(name + inferred, pattern))


def _equal(name: str, path: str) -> bool:
    return name == path


def _any_glob(lowered_name: str, value: Any, globs: tuple[str, ...]) -> bool:
    return any(_matches(lowered_name, value, glob, fnmatchcase) for glob in globs)


def _suffix_of(name: str) -> str | None:
    return next((s for s in SUFFIXES if name.endswith(s) and len(name) > len(s) and name[-len(s) - 1] != "."), None)


def _inferred_suffix(value: Any) -> str | None:
    """The one suffix FullStory infers for an unsuffixed value: every number is real."""
    if isinstance(value, bool):
        return "_bool"
    if isinstance(value, int | float):
        return "_real"
    if isinstance(value, str):
        return "_str"
    if isinstance(value, list):
        if not value:
            return "_strs"  # unconfirmed: read an empty list as FullStory's commonest list type
        kinds = {None if isinstance(item, list | dict) else _inferred_suffix(item) for item in value}
        kind = kinds.pop() if len(kinds) == 1 else None
        return f"{kind}s" if kind else None  # mixed lists, and lists of lists or objects, have no suffix
    return None


def _reversed_range(body: str) -> str | None:
    index = 0
    while index + 2 < len(body):
        if body[index + 1] == "-" and body[index] > body[index + 2]:
            return body[index : index + 3]
        index += 3 if body[index + 1] == "-" else 1
    return None


def _as_key(value: Any) -> str | None:
    """An FME key from a property: a non-blank string, or an integer (ids sent as numbers)."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return str(int(value))  # 12345.0 (FullStory's "real") is the id 12345, not "12345.0"


def shown(value: Any, *, quote: bool = True) -> str:
    text = repr(value) if quote else str(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def one_line(text: str) -> str:
    return " ".join(text.split())
