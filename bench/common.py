"""What every measurement shares: results, the served function, the FullStory workload, statistics."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
# FakeUpstream lives with the tests; the bench runs from the repo root but may be imported from anywhere.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.upstream import FakeUpstream as FakeUpstream  # noqa: E402  (re-exported for the modules)

# Not sys.executable's resolved path: the venv's bin/ holds the CLI, its python may be a symlink elsewhere.
CLI = Path(sys.executable).parent / "functions-framework"
SDK_KEY = "bench-sdk-key"
FULLSTORY_KEY = "bench-fullstory-key"
_OWN_PREFIXES = ("SPLIT_", "FULLSTORY_", "FS2SPLIT_", "GOOGLE_CLOUD_", "AWS_")


@dataclass(frozen=True)
class Metric:
    """One line of the report. ``op``/``bound`` make it a target; without them it is information."""

    key: str  # stable machine name (JSON, smoke test)
    label: str
    value: float
    unit: str
    op: str | None = None  # "<=" or "<" or ">="
    bound: float | None = None
    note: str = ""

    @property
    def ok(self) -> bool | None:
        if self.op is None or self.bound is None:
            return None
        return {"<=": self.value <= self.bound, "<": self.value < self.bound, ">=": self.value >= self.bound}[self.op]

    @property
    def target(self) -> str:
        if self.op is None or self.bound is None:
            return ""
        return f"{self.op} {_fmt(self.bound)}{self.unit}"

    def shown(self) -> str:
        return f"{_fmt(self.value)}{self.unit}"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "op": self.op,
            "bound": self.bound,
            "ok": self.ok,
            "note": self.note,
        }


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) >= 10:
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of nothing")
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest rank: the smallest sample with at least ``pct`` % of samples at or below it."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of nothing")
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def client_session() -> requests.Session:
    """The sender's side: one keep-alive connection, without requests' per-call proxy lookup.

    With ``trust_env`` on, requests scans the whole environment for proxy settings on every call
    (~0.6 ms here). That is the measuring instrument's cost, not the function's: FullStory's sender
    is not Python. The function's own client is measured as it is configured.
    """
    session = requests.Session()
    session.trust_env = False
    return session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The machine's environment without any fs2split setting or cloud credential, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES) and k != "LOG_LEVEL"}
    return {**env, **extra}


def fs2split_env(up: FakeUpstream, log_level: str = "WARNING") -> dict[str, str]:
    return clean_env(
        SPLIT_API_KEY=SDK_KEY,
        FULLSTORY_API_KEY=FULLSTORY_KEY,
        SPLIT_EVENTS_URL=up.split_events_url,
        FULLSTORY_API_URL=up.fullstory_url,
        LOG_LEVEL=log_level,
    )


class Served:
    """A function served by the real ``functions-framework`` CLI (gunicorn: an arbiter and one worker),
    and one keep-alive client session to it, as FullStory's sender would hold."""

    def __init__(self, name: str, *, source: Path, target: str, env: dict[str, str], ready_path: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready_path = ready_path
        self._log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        # Output goes to a file, never an unread pipe: a full pipe would block the server mid-request.
        self.process = subprocess.Popen(
            [str(CLI), "--target", target, "--source", str(source), "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=source.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the gunicorn worker with it
        )
        self.session = client_session()

    def wait_ready(self, timeout_s: float = 30.0) -> Served:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(self.url + self._ready_path, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        output = self.output()
        self.stop()
        raise RuntimeError(f"{self.name}: functions-framework did not start:\n{output[-3000:]}")

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[float, requests.Response]:
        """Seconds from send to the whole answer read, and the answer."""
        started = time.perf_counter()
        response = self.session.post(self.url + path, data=body, headers=headers, timeout=30)
        return time.perf_counter() - started, response

    def worker_pid(self) -> int:
        """The gunicorn worker serving requests (the CLI's process is the arbiter that forked it)."""
        children = _children(self.process.pid)
        if len(children) != 1:
            raise RuntimeError(f"{self.name}: expected one gunicorn worker, found {children}")
        return children[0]

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return Path(self._log.name).read_text(errors="replace")
        return ""

    def signal_stop(self) -> None:
        self.session.close()
        if self.process.poll() is None:
            # SIGINT: gunicorn's quick shutdown; SIGTERM would wait for idle keep-alive connections.
            self.process.send_signal(signal.SIGINT)

    def stop(self) -> None:
        self.signal_stop()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        # A worker the arbiter left behind (killed, or still busy) must not outlive the benchmark.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


def serve_fs2split(up: FakeUpstream, name: str = "fs2split", log_level: str = "WARNING") -> Served:
    return Served(
        name, source=ROOT / "main.py", target="fs2split", env=fs2split_env(up, log_level), ready_path="/healthz"
    )


def serve_bare() -> Served:
    return Served("bare", source=ROOT / "bench" / "bare" / "main.py", target="bare", env=clean_env(), ready_path="/")


@contextlib.contextmanager
def served(*functions: Served) -> Iterator[tuple[Served, ...]]:
    """Start together (they boot in parallel on the machine's cores), stop together."""
    try:
        for function in functions:
            function.wait_ready()
        yield functions
    finally:
        for function in functions:
            function.signal_stop()  # all at once: each takes a moment to wind down
        for function in functions:
            function.stop()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    if found:
        return sorted(set(found))
    # Kernels without /proc/<pid>/task/<tid>/children: scan every process's parent.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def proc_status_kb(pid: int, field_name: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmHWM: peak resident set; VmRSS: current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages divided among their sharers, so processes' figures add up."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


@dataclass
class Workload:
    """FullStory custom-event webhooks from a skewed (Zipf-like, seeded) population of users.

    Every body is distinct: the function deduplicates identical bodies, and a benchmark of duplicates
    would measure the dedup store instead of delivery.
    """

    seed: int = 20240601
    skew: float = 1.1  # Zipf exponent: the top user sends about a quarter of a 60-user stream
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def users(self, count: int, up: FakeUpstream | None = None) -> list[str]:
        """``count`` new FullStory user ids, each identified (has a uid) on ``up``."""
        ids = [str(self._rng.randrange(10**15, 10**16)) for _ in range(count)]
        if up is not None:
            for user_id in ids:
                up.add_user(user_id, f"customer-{user_id[-6:]}")
        return ids

    def stream(self, events: int, users: Sequence[str]) -> list[str]:
        """Which user sends each event: every user at least once, the rest drawn by Zipf rank, shuffled."""
        population = list(users[:events])
        weights = [1 / (rank + 1) ** self.skew for rank in range(len(population))]
        picks = population + self._rng.choices(population, weights, k=max(0, events - len(population)))
        self._rng.shuffle(picks)
        return picks

    def body(self, user_id: str) -> bytes:
        serial = next(self._serial)
        session_id = 5557778531805533 + serial
        millis = 1_717_200_000_000 + serial * 1_000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"
        return json.dumps(
            {
                "eventName": "recording.event.custom",
                "version": 1,
                "data": {
                    "name": "Product Added",
                    "properties": {
                        "cart_id_str": str(13093678493 + serial),
                        "price_real": round(5 + self._rng.random() * 95, 2),
                        "quantity_real": self._rng.randint(1, 5),
                        "position_int": serial % 20,
                        "url_str": "https://www.example.com/product/path",
                    },
                    "pageUrl": "https://www.example.com/product/path",
                    "sessionUrl": f"https://app.fullstory.com/ui/TN1/session/{user_id}:{session_id}!{serial}",
                    "timestamp": stamp,
                },
            }
        ).encode()


JSON_HEADERS = {"Content-Type": "application/json"}


def expect(response: requests.Response, status: int, reason: str | None = None) -> None:
    """A benchmark of failures measures nothing: stop at the first unexpected answer."""
    got_reason = None
    with contextlib.suppress(ValueError):
        body = response.json()
        got_reason = body.get("reason") if isinstance(body, dict) else None
    if response.status_code != status or (reason is not None and got_reason != reason):
        raise RuntimeError(
            f"{response.request.method} {response.url}: expected {status} {reason or ''}, "
            f"got {response.status_code}: {response.text[:300]}"
        )
