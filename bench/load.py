"""Delivery accounting under load and faults: 40 concurrent senders against the served function (the real
functions-framework CLI), with a loopback FME and FullStory that misbehave on purpose.

Each sender behaves like FullStory's: it retries on 5xx, 429 and timeouts (never on another 4xx), a few
times, then gives up. Every webhook carries a serial; the fakes count, per serial, how many copies FME
stored. An event is *delivered once* (one copy), *duplicated* (more), *acknowledged and lost* (the sender
heard 2xx, FME has no copy) or *refused* (the sender was told to retry and ran out of retries: it knows).

A second figure: the peak RSS of the serving worker while a 256 MiB body is refused (413).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from bench.common import (
    JSON_HEADERS,
    ROOT,
    FakeUpstream,
    Metric,
    Served,
    Workload,
    client_session,
    fs2split_env,
    proc_status_kb,
)
from tests.support.upstream import Fault

SENDERS = 40
SENDER_ATTEMPTS = 6
SENDER_BACKOFF_S = 0.2
READ_TIMEOUT_S = 0.5
BODY_MIB = 256
BULK = "/api/events/bulk"
USERS = "/v2/users/"


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    # One fault in every ``every`` calls to FME's events API and FullStory's users API (0: none).
    fault: Callable[[], Fault] | None = None
    every: int = 4
    fme_only: bool = False
    duplicates_allowed: bool = False


SCENARIOS = (
    Scenario("clean", "no faults"),
    Scenario("http_500", "1 in 4 upstream calls answers 500", lambda: Fault(status=500)),
    Scenario(
        "http_429",
        "1 in 4 upstream calls answers 429, Retry-After: 1",
        lambda: Fault(status=429, headers={"Retry-After": "1"}),
    ),
    Scenario("resets", "1 in 4 upstream calls is reset (TCP RST, no answer)", lambda: Fault(reset=True)),
    Scenario(
        "hangs",
        f"1 in 8 FME posts answers after the {READ_TIMEOUT_S} s read timeout (and FME stores it)",
        lambda: Fault(delay=READ_TIMEOUT_S + 0.5),
        every=8,
        fme_only=True,
        duplicates_allowed=True,
    ),
)


@dataclass
class Tally:
    sent: int = 0
    delivered_once: int = 0
    duplicated: int = 0
    lost: int = 0
    refused: int = 0


def run(events: int) -> list[Metric]:
    metrics: list[Metric] = []
    with FakeUpstream() as up:
        workload = Workload(seed=4040)
        users = workload.users(max(1, events // 10), up)
        env = fs2split_env(up)
        env.update(
            FS2SPLIT_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT_S),
            FS2SPLIT_RETRY_BUDGET_SECONDS="3",
            FS2SPLIT_RETRY_BACKOFF_SECONDS="0.05",
        )
        served = Served("fs2split-load", source=ROOT / "main.py", target="fs2split", env=env, ready_path="/healthz")
        served.wait_ready()
        try:
            for scenario in SCENARIOS:
                tally = _run_scenario(up, served, workload, users, scenario, events)
                metrics += _metrics(scenario, tally)
            metrics.append(_refused_body_peak(served))
        finally:
            served.stop()
    return metrics


def _run_scenario(
    up: FakeUpstream, served: Served, workload: Workload, users: list[str], scenario: Scenario, events: int
) -> Tally:
    up.reset()
    if scenario.fault is not None:
        # Enough scripted answers for every call, retries included; a fault every ``every`` calls.
        script = [scenario.fault() if n % scenario.every == 0 else Fault() for n in range(events * 6)]
        up.script("POST", BULK, *script)
        if not scenario.fme_only:
            up.script("GET", USERS, *script)
    stream = workload.stream(events, users)
    bodies = {_serial(body): body for body in (workload.body(user) for user in stream)}
    heard: dict[str, int] = {}
    local = threading.local()

    def send(item: tuple[str, bytes]) -> None:
        serial, body = item
        session = getattr(local, "session", None) or client_session()
        local.session = session
        status = 0
        for attempt in range(SENDER_ATTEMPTS):
            try:
                status = session.post(
                    f"{served.url}/fullstory", data=body, headers=JSON_HEADERS, timeout=10
                ).status_code
            except requests.RequestException:
                status = 0
            if status and status < 500 and status != 429:
                break
            time.sleep(SENDER_BACKOFF_S * (attempt + 1))
        heard[serial] = status

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send, bodies.items()))
    stored = Counter(str(event.get("properties", {}).get("cart_id_str")) for event in up.fme_events())
    tally = Tally(sent=len(bodies))
    for serial, status in heard.items():
        copies = stored.get(serial, 0)
        if copies == 1:
            tally.delivered_once += 1
        elif copies > 1:
            tally.duplicated += 1
        elif 200 <= status < 300:
            tally.lost += 1
        else:
            tally.refused += 1
    up.reset()
    return tally


def _serial(body: bytes) -> str:
    # Workload.body() gives each body its own cart_id_str: the serial the fakes count by.
    return str(json.loads(body)["data"]["properties"]["cart_id_str"])


def _metrics(scenario: Scenario, tally: Tally) -> list[Metric]:
    key = f"load.{scenario.name}"
    note = f"{scenario.what}; {SENDERS} senders, {tally.refused} refused to the sender after its retries"
    return [
        Metric(f"{key}.sent", f"load, {scenario.name}: events sent", tally.sent, "", note=note),
        Metric(f"{key}.delivered_once", f"load, {scenario.name}: delivered once", tally.delivered_once, ""),
        Metric(
            f"{key}.duplicated",
            f"load, {scenario.name}: duplicated at FME",
            tally.duplicated,
            "",
            *((None, None) if scenario.duplicates_allowed else ("<=", 0)),
        ),
        Metric(f"{key}.lost", f"load, {scenario.name}: acknowledged and lost", tally.lost, "", "<=", 0),
    ]


def _refused_body_peak(served: Served) -> Metric:
    worker = served.worker_pid()
    before_kb = proc_status_kb(worker, "VmHWM")
    status = _send_huge(served.port, BODY_MIB * 1024 * 1024)
    peak_kb = proc_status_kb(worker, "VmHWM")
    return Metric(
        "load.refused_body_worker_peak_mb",
        f"peak RSS of the serving worker while a {BODY_MIB} MiB body is refused (VmHWM)",
        peak_kb / 1024,
        " MB",
        "<",
        150,
        note=f"answered {status}; {before_kb / 1024:.0f} MB before",
    )


def _send_huge(port: int, size: int) -> int:
    """POST ``size`` bytes with a declared Content-Length, writing until the server answers or closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST /fullstory HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        chunk = b"\x00" * (1024 * 1024)
        sent = 0
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed: what a refusal without reading looks like
        answer = b""
        try:
            while b"\r\n" not in answer:
                part = sock.recv(4096)
                if not part:
                    break
                answer += part
        except OSError:
            pass
    fields = answer.split(b" ", 2)
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
