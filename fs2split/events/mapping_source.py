"""Where a mapping comes from, and whether one is configured at all.

Kept apart from the loader so that a function without a mapping answers its first request without
importing the loader, the matcher or YAML.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

INLINE_VARIABLE = "FS2SPLIT_MAPPING"
FILE_VARIABLE = "FS2SPLIT_MAPPING_FILE"
LEGACY_FILE = "fs2split.yaml"
DEFAULT_DIR = Path(__file__).resolve().parents[2]  # where main.py is deployed


def configured(env: Mapping[str, str] | None = None, *, legacy_dir: Path | None = DEFAULT_DIR) -> bool:
    """Whether any mapping source is present: the inline mapping, a mapping file, or fs2split.yaml."""
    e = os.environ if env is None else env
    if e.get(INLINE_VARIABLE, "").strip() or e.get(FILE_VARIABLE, "").strip():
        return True
    return legacy_dir is not None and (legacy_dir / LEGACY_FILE).is_file()
