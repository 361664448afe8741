"""``python -m fs2split check-mapping [FILE]``: validate a mapping before deploying it.

Without FILE, checks what the function would load from this environment: ``FS2SPLIT_MAPPING``,
``FS2SPLIT_MAPPING_FILE`` or ``fs2split.yaml`` beside ``main.py``. Exit status 0 when the
mapping is valid or there is none, 1 when it is invalid (the one-line reason goes to stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "check-mapping"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        NAME,
        help="validate a mapping file, or the mapping this environment would load",
        description="Validate a mapping. Without FILE: FS2SPLIT_MAPPING, FS2SPLIT_MAPPING_FILE or fs2split.yaml "
        "beside main.py, as the function would load it.",
    )
    check.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a YAML or JSON mapping file")


def run(arguments: argparse.Namespace) -> int:
    from fs2split.events import mapping, mapping_file

    file: Path | None = arguments.file
    try:
        loaded = mapping_file.load_file(file) if file is not None else mapping_file.load()
    except mapping.MappingError as error:
        print(error, file=sys.stderr)
        return 1
    if loaded is None:
        print("no mapping: FS2SPLIT_MAPPING, FS2SPLIT_MAPPING_FILE and fs2split.yaml are absent; events map as usual")
        return 0
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    summary = loaded.summary()
    print(
        f"mapping ok ({summary['source']}): {summary['rules']} event rule(s), {summary['drop']} drop glob(s); "
        f"properties: {summary['include']} include, {summary['exclude']} exclude, {summary['redact']} redact glob(s)"
    )
    if loaded.streams is not None:
        paths = loaded.streams
        print(
            f"streams: name={paths.name}, timestamp={paths.timestamp}, uid={paths.uid}, "
            f"properties={paths.properties or '(none)'}"
        )
    return 0
