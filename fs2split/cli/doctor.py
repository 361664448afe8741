"""``python -m fs2split doctor [--send-test-event]``: check the live configuration, one line per check.

Settings, the mapping, every configured secret readable, the FullStory key allowed to read users (a
lookup of a made-up user id must give 404, not 401/403), and, only with ``--send-test-event``, the
FME SDK key (one ``fs2split_doctor`` event). A check whose key is not configured prints ``skip``
and does not fail. Exit 0 when every check holds, 1 otherwise. No secret is ever printed.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fs2split.clients.upstream import Upstream
    from fs2split.config.keys import Keys
    from fs2split.config.settings import Settings

NAME = "doctor"
TEST_EVENT_TYPE = "fs2split_doctor"
TEST_EVENT_KEY = "fs2split-doctor"
_BUDGET_S = 10.0  # per upstream check: a doctor run should end well inside a minute


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        NAME,
        help="check settings, mapping, secrets and API keys of this environment, one line per check",
        description="Check the live configuration: settings, mapping, every configured secret, the FullStory "
        "key's role (a user lookup), and with --send-test-event the FME key (one fs2split_doctor event).",
    )
    doctor.add_argument(
        "--send-test-event",
        action="store_true",
        help=f"also send one {TEST_EVENT_TYPE} event to FME with SPLIT_API_KEY (it stays in FME)",
    )


@dataclass
class _Report:
    hidden: list[str] = field(default_factory=list)  # secret values, masked in every line printed
    failed: bool = False

    def line(self, verdict: str, check: str, detail: str = "") -> None:
        text = f"{verdict:<4}  {check}" + (f": {detail}" if detail else "")
        for value in self.hidden:
            text = text.replace(value, "***")
        print(text[:400])
        self.failed |= verdict == "FAIL"


def run(arguments: argparse.Namespace) -> int:
    from fs2split.config import keys as key_names
    from fs2split.config.settings import Settings, SettingsError

    report = _Report()
    try:
        settings = Settings.from_env()
        report.line("ok", "settings")
    except SettingsError as error:
        report.line("FAIL", "settings", str(error))
        settings = Settings()
    _check_mapping(report)
    keys = key_names.Keys()
    values = dict(_secrets(keys, report))
    from fs2split.clients.upstream import Upstream, budget

    upstream = Upstream(
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        backoff_factor=settings.retry_backoff_s,
        max_retries=2,
    )
    try:
        with budget(_BUDGET_S):
            _check_fullstory_key(report, settings.fullstory_api_url, upstream, values.get(key_names.FULLSTORY_API_KEY))
        if arguments.send_test_event:
            with budget(_BUDGET_S):
                _check_fme_key(report, settings, upstream, values.get(key_names.SPLIT_API_KEY))
        else:
            report.line("skip", "FME key", "pass --send-test-event to send one fs2split_doctor event with it")
    finally:
        upstream.close()
    return 1 if report.failed else 0


def _check_mapping(report: _Report) -> None:
    from fs2split.events import mapping, mapping_file

    try:
        loaded = mapping_file.load()
    except mapping.MappingError as error:
        report.line("FAIL", "mapping", str(error))
        return
    if loaded is None:
        report.line("skip", "mapping", "none configured; events map as usual")
    else:
        report.line("ok", "mapping", loaded.source + (" (with a streams section)" if loaded.streams else ""))


def _secrets(keys: Keys, report: _Report) -> Iterator[tuple[str, str]]:
    from fs2split.config import keys as key_names

    for name in _SECRET_NAMES:
        if not keys.configured(name):
            report.line("skip", f"secret {name}", "not configured")
            continue
        try:
            value = keys.get(name)
        except key_names.SecretUnavailable as error:
            report.line("FAIL", f"secret {name}", str(error))
            continue
        if not value:
            report.line("FAIL", f"secret {name}", "configured but empty")
            continue
        report.hidden.append(value)
        report.line("ok", f"secret {name}", "readable")
        yield name, value


_SECRET_NAMES = (
    "SPLIT_API_KEY",
    "FULLSTORY_API_KEY",
    "FULLSTORY_WEBHOOK_SECRET",
    "FULLSTORY_WEBHOOK_SECRET_PREVIOUS",
    "FULLSTORY_STREAM_TOKEN",
    "SPLIT_IMPRESSIONS_TOKEN",
)


def _check_fullstory_key(report: _Report, api_url: str, upstream: Upstream, api_key: str | None) -> None:
    from fs2split.clients.fullstory_api import FullStoryApi, Lookup

    check = "FullStory key may read users"
    if api_key is None:
        report.line("skip", check, "FULLSTORY_API_KEY is not configured (or not readable)")
        return
    # Digits, like a real FullStory user id, so FullStory answers 404 rather than 400 for its shape.
    made_up = "9" + "".join(secrets.choice("0123456789") for _ in range(15))
    lookup = FullStoryApi(upstream, api_url, api_key).get_user(made_up)
    status = lookup.reply.status if lookup.reply else 0
    if lookup.result is Lookup.NOT_FOUND or (lookup.reply is not None and lookup.reply.ok):
        report.line("ok", check, f"a lookup of an unknown id answered {status}")
    elif status in (401, 403):
        report.line(
            "FAIL", check, f"HTTP {status}: reading users needs an Admin or Architect key (events need Standard)"
        )
    else:
        report.line("FAIL", check, lookup.reply.describe() if lookup.reply else "no answer")


def _check_fme_key(report: _Report, settings: Settings, upstream: Upstream, sdk_key: str | None) -> None:
    from fs2split.clients.fme_api import FmeApi
    from fs2split.events import fme_event

    check = "FME key accepts an event"
    if sdk_key is None:
        report.line("skip", check, "SPLIT_API_KEY is not configured (or not readable)")
        return
    event = fme_event.build(
        event_type=TEST_EVENT_TYPE,
        traffic_type=settings.traffic_type,
        key=TEST_EVENT_KEY,
        timestamp_ms=int(time.time() * 1000),
        value=None,
        properties={"source": "python -m fs2split doctor"},
    )
    reply = FmeApi(upstream, settings.split_events_url, sdk_key).send([event])
    if reply.ok:
        report.line("ok", check, f"one {TEST_EVENT_TYPE} event sent (HTTP {reply.status})")
    else:
        report.line("FAIL", check, reply.describe())
