"""FullStory event names → FME event type ids.

FME accepts ``^[a-zA-Z0-9][-_.:a-zA-Z0-9]{0,79}$``. The rule for any other name, meant to be
predictable by a person defining an FME metric:

1. accents are removed (``Café`` → ``Cafe``);
2. every other character outside ``A-Z a-z 0-9 - _ . :`` becomes ``_`` (``Product Added`` →
   ``Product_Added``), one for one, so names differing in punctuation stay distinct;
3. a name that does not start with a letter or digit gets the prefix ``fs`` (``_x`` → ``fs_x``);
4. a name longer than 80 characters keeps its first 71 and ends with ``_`` plus the first 8 hex
   digits of the SHA-256 of the original name, so long names sharing a prefix stay distinct.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping

FME_EVENT_TYPE = re.compile(r"^[a-zA-Z0-9][-_.:a-zA-Z0-9]{0,79}$")
_INVALID_CHAR = re.compile(r"[^-_.:a-zA-Z0-9]")
_MAX = 80


def is_valid_event_type(name: str) -> bool:
    return FME_EVENT_TYPE.fullmatch(name) is not None


def renames_problem(renames: Mapping[str, str] | None) -> str | None:
    """Why a rename map (FS2SPLIT_EVENT_TYPE_MAP) cannot be used, or None: every target must be valid in FME."""
    for name, target in (renames or {}).items():
        if not is_valid_event_type(target):
            return f"FS2SPLIT_EVENT_TYPE_MAP: {name!r} maps to {target!r}, which FME refuses as an event type"
    return None


def to_event_type(name: str, renames: Mapping[str, str] | None = None) -> str:
    """The FME event type for a non-empty FullStory event name; a rename wins over the rule."""
    if renames and name in renames:
        return renames[name]
    if is_valid_event_type(name):
        return name
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    mapped = _INVALID_CHAR.sub("_", plain)
    if not mapped[:1].isalnum():  # only ASCII is left at this point
        mapped = "fs" + mapped
    if len(mapped) > _MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        mapped = f"{mapped[:71]}_{digest}"
    return mapped
