"""``python -m fs2split sign FILE``: sign a body as FullStory would, to try a signed webhook by hand.

Prints the ``Fullstory-Signature`` header for FILE (secret from ``--secret`` or ``FULLSTORY_WEBHOOK_SECRET``,
an org id and the current time), then the ``curl --data-binary`` line that sends FILE byte for byte to the
local function. ``curl -d`` would strip the file's newlines, and with them the signature.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

NAME = "sign"
DEFAULT_URL = "http://127.0.0.1:8080/fullstory"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sign = commands.add_parser(
        NAME,
        help="print the Fullstory-Signature header and the curl line for a webhook body",
        description="Sign FILE as FullStory signs a webhook and print the header, then a curl line that sends it.",
    )
    sign.add_argument("file", type=Path, metavar="FILE", help="the request body, sent byte for byte")
    sign.add_argument("--secret", help="the webhook secret (default: FULLSTORY_WEBHOOK_SECRET)")
    sign.add_argument("--org", default="o-fs2split-local", help="the org id in the header (default: %(default)s)")
    sign.add_argument("--url", default=DEFAULT_URL, help="where the curl line sends it (default: %(default)s)")
    sign.add_argument("--timestamp", help="seconds since the epoch (default: now)")


def run(arguments: argparse.Namespace) -> int:
    from fs2split.config.keys import FULLSTORY_WEBHOOK_SECRET, Keys, SecretUnavailable
    from fs2split.events import signature

    try:
        secret = arguments.secret if arguments.secret is not None else Keys(legacy_dir=None).get(
            FULLSTORY_WEBHOOK_SECRET
        )
    except SecretUnavailable as error:
        print(f"sign: {error}", file=sys.stderr)
        return 2
    if not secret or not secret.strip():
        print("sign: no secret: set FULLSTORY_WEBHOOK_SECRET or pass --secret", file=sys.stderr)
        return 2
    file: Path = arguments.file
    try:
        body = file.read_bytes()
    except OSError as error:
        print(f"sign: cannot read {file}: {error.strerror}", file=sys.stderr)
        return 2
    stamp = arguments.timestamp or str(int(time.time()))
    if not stamp.isdigit():
        print("sign: --timestamp must be whole seconds since the epoch", file=sys.stderr)
        return 2
    # The function strips a secret's surrounding whitespace, so the signature must use the same value.
    value = signature.sign(secret.strip(), body, arguments.org, stamp)
    header = f"{signature.HEADER}: o:{arguments.org},t:{stamp},v:{value}"
    print(header)
    print(
        "curl -s -H "
        + shlex.quote(header)
        + " --data-binary "
        + shlex.quote(f"@{file}")
        + " "
        + shlex.quote(arguments.url)
    )
    return 0
