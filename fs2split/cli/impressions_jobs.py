"""``python -m fs2split impressions-jobs [JOB_ID ...] [--since DURATION] [--log FILE]``: what became of the
FullStory batch import jobs fs2split created for impressions.

FullStory has no endpoint that lists jobs, so the ids come from the arguments or from fs2split's own log lines
(their ``fullstory_jobs`` field; JSON lines as fs2split writes them, or as Cloud Logging / CloudWatch export
them). Reading a job needs an Admin or Architect key. One line per job, then its errors; exit status 0 when
every job was read and none failed or has errors, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

NAME = "impressions-jobs"
# Error lines printed per job: enough to see the pattern; the count says how many there are.
_SHOWN_ERRORS = 10
_MAX_ERROR_PAGES = 20
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = commands.add_parser(
        NAME,
        help="show the status and errors of FullStory batch import jobs made for impressions",
        description="Show each job's status and error count from FullStory (needs an Admin or Architect key in "
        "FULLSTORY_API_KEY). Job ids come from the arguments and from fs2split's log lines (--log).",
    )
    jobs.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="a job id from a response or a log line")
    jobs.add_argument("--log", type=Path, metavar="FILE", help="fs2split log lines to read job ids from ('-': stdin)")
    jobs.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="with --log: only lines from the last DURATION (90m, 6h, 2d)",
    )


def run(arguments: argparse.Namespace) -> int:
    from fs2split.clients.fullstory_batch import valid_job_id

    since: timedelta | None = arguments.since
    if since is not None and arguments.log is None:
        print("--since needs --log FILE: it filters log lines by their time", file=sys.stderr)
        return 2
    wanted: dict[str, int | None] = {}
    for given in arguments.job_ids:
        if valid_job_id(given) is None:
            print(f"not a job id: {given[:80]!r}", file=sys.stderr)
            return 2
        wanted[given] = None
    if arguments.log is not None:
        try:
            lines = _read_lines(arguments.log)
            if lines and lines[0].lstrip().startswith("["):
                # `gcloud logging read --format=json`: one JSON array over many lines; one entry per line then.
                lines = _entries_as_lines(lines)
        except OSError as error:
            print(f"cannot read {arguments.log}: {error.strerror}", file=sys.stderr)
            return 2
        cutoff = datetime.now(UTC) - since if since is not None else None
        for job_id, size in jobs_in_log(lines, cutoff):
            wanted.setdefault(job_id, size)
    if not wanted:
        print("no job ids: pass JOB_ID arguments or --log FILE with fs2split's log lines", file=sys.stderr)
        return 2 if arguments.log is None else 0
    return _report(wanted)


def jobs_in_log(lines: Iterable[str], cutoff: datetime | None = None) -> Iterator[tuple[str, int | None]]:
    """(job id, impressions in it) for every job named in these log lines, oldest first, no repeats."""
    from fs2split.clients.fullstory_batch import valid_job_id

    seen: set[str] = set()
    for line in lines:
        record = _json_in(line)
        if record is None:
            continue
        jobs = _find(record, "fullstory_jobs")
        if not isinstance(jobs, list):
            continue
        if cutoff is not None:
            when = _time_of(record)
            if when is not None and when < cutoff:
                continue
        for job in jobs:
            job_id = valid_job_id(job.get("id") if isinstance(job, dict) else job)
            if job_id is None or job_id in seen:
                continue
            seen.add(job_id)
            size = job.get("impressions") if isinstance(job, dict) else None
            yield job_id, size if isinstance(size, int) else None


def _report(wanted: dict[str, int | None]) -> int:
    from fs2split.clients.fullstory_batch import FullStoryBatchApi
    from fs2split.clients.upstream import Upstream, budget
    from fs2split.config.keys import FULLSTORY_API_KEY, Keys, SecretUnavailable
    from fs2split.config.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        # The same key the function uses: FULLSTORY_API_KEY, its _SECRET reference, or the file beside main.py.
        api_key = Keys(os.environ).get(FULLSTORY_API_KEY)
    except (SettingsError, SecretUnavailable) as error:
        print(error, file=sys.stderr)
        return 1
    if api_key is None:
        print("FULLSTORY_API_KEY is not set (an Admin or Architect key can read batch jobs)", file=sys.stderr)
        return 1
    upstream = Upstream(connect_timeout_s=settings.connect_timeout_s, read_timeout_s=settings.read_timeout_s)
    api = FullStoryBatchApi(upstream, settings.fullstory_api_url, api_key)
    healthy = True
    try:
        for job_id, size in wanted.items():
            with budget(settings.retry_budget_s):
                healthy = _show(api, job_id, size, sys.stdout) and healthy
    finally:
        upstream.close()
    return 0 if healthy else 1


def _show(api: Any, job_id: str, size: int | None, out: TextIO) -> bool:
    read = api.job_status(job_id)
    reply = read.reply
    if not reply.ok:
        why = reply.describe()
        if reply.status == 403:
            why += " (reading batch jobs needs an Admin or Architect key)"
        elif reply.status == 404:
            why = "not found (FullStory keeps jobs for a limited time; check FULLSTORY_API_URL's data center)"
        print(f"{job_id}  UNREADABLE  {why}", file=out)
        return False
    status = read.status or "UNKNOWN"
    counts = [f"impressions={size}"] if size is not None else []
    counts += [f"imported={_or_unknown(read.imports)}", f"errors={_or_unknown(read.errors)}"]
    print(f"{job_id}  {status}  {'  '.join(counts)}", file=out)
    healthy = status not in ("FAILED", "UNKNOWN") and not read.errors
    if read.errors or status == "FAILED":
        _show_errors(api, job_id, out)
    return healthy


def _show_errors(api: Any, job_id: str, out: TextIO) -> None:
    shown, token = 0, None
    for _ in range(_MAX_ERROR_PAGES):
        page = api.job_errors(job_id, token)
        if not page.reply.ok:
            print(f"  errors unreadable: {page.reply.describe()}", file=out)
            return
        for error in page.errors:
            if shown < _SHOWN_ERRORS:
                print(f"  {_one_line(error)}", file=out)
            shown += 1
        token = page.next_page_token
        if token is None or shown >= _SHOWN_ERRORS:
            break
    if shown > _SHOWN_ERRORS:
        print(f"  ... and more (showing the first {_SHOWN_ERRORS})", file=out)


def _one_line(error: dict[str, Any]) -> str:
    code, message = error.get("code"), error.get("message")
    text = f"{code}: {message}" if code or message else json.dumps(error, ensure_ascii=True)[:200]
    # FullStory's text is untrusted: one printable line, bounded.
    return "".join(c if c.isprintable() else " " for c in str(text))[:300]


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else str(value)


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 6h or 2d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _read_lines(path: Path) -> list[str]:
    if str(path) == "-":
        return sys.stdin.readlines()
    with path.open(encoding="utf-8", errors="replace") as file:
        return file.readlines()


def _entries_as_lines(lines: list[str]) -> list[str]:
    try:
        entries = json.loads("".join(lines))
    except ValueError:
        return lines
    return [json.dumps(entry) for entry in entries] if isinstance(entries, list) else lines


def _json_in(line: str) -> dict[str, Any] | None:
    # CloudWatch exports prefix the JSON with a timestamp and request id; Cloud Logging wraps it in jsonPayload.
    start = line.find("{")
    if start < 0 or "fullstory_jobs" not in line:
        return None
    try:
        record = json.loads(line[start:])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _find(record: Any, key: str, depth: int = 0) -> Any:
    if not isinstance(record, dict) or depth > 4:
        return None
    if key in record:
        return record[key]
    for value in record.values():
        found = _find(value, key, depth + 1)
        if found is not None:
            return found
    return None


def _time_of(record: dict[str, Any]) -> datetime | None:
    for key in ("time", "timestamp"):
        value = _find(record, key)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    return None
