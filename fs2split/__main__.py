"""``python -m fs2split COMMAND``: fs2split's command-line tools.

Each command is a module in `fs2split.cli` with ``NAME``, ``add_parser(commands)`` and
``run(arguments) -> int``; add a module to ``COMMANDS`` to add a command. Exit status 2 is a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# One line per command; each module is imported only to build the parser, its heavy work on run.
COMMANDS = (
    "fs2split.cli.check_mapping",
    "fs2split.cli.doctor",
    "fs2split.cli.impressions_jobs",
    "fs2split.cli.redrive",
    "fs2split.cli.sign",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fs2split", description="fs2split command-line tools.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    runners = {}
    for name in COMMANDS:
        module = importlib.import_module(name)
        module.add_parser(commands)
        runners[module.NAME] = module.run
    arguments = parser.parse_args(argv)
    if arguments.command not in runners:
        parser.print_help(sys.stderr)
        return 2
    return int(runners[arguments.command](arguments))


if __name__ == "__main__":
    sys.exit(main())
