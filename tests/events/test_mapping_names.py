"""Property-based: a Streams event and the v1 webhook of the same call look the same to the mapping.

FullStory names v1 leaves with an inferred type suffix (strings ``_str``, booleans ``_bool``, every
number ``_real``, string lists ``_strs``) and leaves Streams names bare. Any path or glob, written
with or without the suffix, must find the same value and filter the same properties in both.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fs2split.events.mapping import EventMapping, leaves, lookup

_NAMES = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
_LEAVES = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=3), max_size=3),
)
_TREES = st.recursive(_LEAVES, lambda inner: st.dictionaries(_NAMES, inner, min_size=1, max_size=3), max_leaves=10)
STREAMS_PROPERTIES = st.dictionaries(_NAMES, _TREES, min_size=1, max_size=4)


def as_v1(properties: dict[str, Any]) -> dict[str, Any]:
    """The v1 webhook FullStory delivers for the same FS('trackEvent') call."""
    return {_v1_key(k, v): as_v1(v) if isinstance(v, dict) else v for k, v in properties.items()}


def _v1_key(key: str, value: Any) -> str:
    return key if isinstance(value, dict) else key + _suffix(value)  # objects' own keys carry no suffix


def _suffix(value: Any) -> str:
    if isinstance(value, bool):
        return "_bool"
    if isinstance(value, int | float):
        return "_real"
    return "_strs" if isinstance(value, list) else "_str"


def v1_name(streams_name: str, value: Any) -> str:
    return streams_name + _suffix(value)


@given(STREAMS_PROPERTIES)
def test_a_path_finds_the_same_value_with_or_without_the_suffix(streams: dict[str, Any]) -> None:
    streams_view, v1_view = leaves(streams), leaves(as_v1(streams))

    for name, value in streams_view.items():
        for path in (name, v1_name(name, value)):
            assert lookup(v1_view, path) == lookup(streams_view, path) == value


@given(STREAMS_PROPERTIES, st.data())
def test_a_property_glob_filters_the_same_properties_in_both(streams: dict[str, Any], data: st.DataObject) -> None:
    name, value = data.draw(st.sampled_from(sorted(leaves(streams).items(), key=lambda item: item[0])))
    glob = data.draw(st.sampled_from([name, v1_name(name, value), name.split(".")[0] + "*"]))
    excluding = EventMapping("test", exclude=(glob,), redact=("*a*",))

    _, *streams_counts = excluding.filter(streams)
    _, *v1_counts = excluding.filter(as_v1(streams))

    assert v1_counts == streams_counts
    assert streams_counts[0] >= 1
