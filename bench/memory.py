"""Memory: the peak resident set of a warm instance after it has served many FullStory webhooks.

Read from the server's processes, not from the bench: the functions-framework CLI runs gunicorn, an
arbiter that imported ``main`` and one worker it forked, which serves. ``VmHWM`` in
``/proc/<pid>/status`` is the kernel's high-water mark of the worker's resident set. A forked child
counts only the inherited pages it has touched since, so the instance as a whole (what a container's
memory limit sees) is also reported: arbiter + worker PSS (shared pages counted once), sampled during
the run, peak kept.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.common import (
    JSON_HEADERS,
    FakeUpstream,
    Metric,
    Served,
    Workload,
    client_session,
    expect,
    proc_status_kb,
    pss_kb,
)

SENDERS = 4  # several at once, as FullStory's sender may: the worker's threads each get a stack
SAMPLE_EVERY_S = 0.25  # reading smaps_rollup walks the page tables: not too often


def run(up: FakeUpstream, fs2split: Served, workload: Workload, events: int, users: int) -> list[Metric]:
    worker = fs2split.worker_pid()
    arbiter = fs2split.process.pid
    before_kb = proc_status_kb(worker, "VmRSS")
    stream = workload.stream(events, workload.users(users, up))
    bodies = [workload.body(user) for user in stream]
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = client_session()
            with lock:
                sessions.append(session)
        expect(session.post(f"{fs2split.url}/fullstory", data=body, headers=JSON_HEADERS, timeout=30), 200)

    peak_pss_kb = pss_kb(worker) + pss_kb(arbiter)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_pss_kb
        while not done.wait(SAMPLE_EVERY_S):
            peak_pss_kb = max(peak_pss_kb, pss_kb(worker) + pss_kb(arbiter))

    sampler = threading.Thread(target=sample, name="bench-pss", daemon=True)
    sampler.start()
    try:
        with ThreadPoolExecutor(SENDERS) as pool:
            list(pool.map(send, bodies))
    finally:
        done.set()
        sampler.join()
        for session in sessions:
            session.close()
    peak_pss_kb = max(peak_pss_kb, pss_kb(worker) + pss_kb(arbiter))
    # The stand-in keeps every request it saw; forget them so the bench process stays small too.
    up.reset()
    peak_kb = proc_status_kb(worker, "VmHWM")
    shape = f"after {events} more events from {users} users, {SENDERS} senders at once"
    return [
        Metric(
            "memory.worker_peak_mb",
            "peak RSS of the serving process (gunicorn worker VmHWM)",
            peak_kb / 1024,
            " MB",
            "<",
            80,
            note=shape,
        ),
        Metric(
            "memory.instance_peak_mb",
            "peak memory of the instance: arbiter + worker PSS",
            peak_pss_kb / 1024,
            " MB",
            "<",
            80,
            note=f"sampled every {SAMPLE_EVERY_S} s during those events",
        ),
        Metric(
            "memory.worker_before_mb",
            "RSS of the serving process before those events (VmRSS)",
            before_kb / 1024,
            " MB",
            note="already warm: it served the latency runs (impressions run on an instance of their own)",
        ),
        Metric(
            "memory.arbiter_peak_mb",
            "peak RSS of the CLI's arbiter process (VmHWM)",
            proc_status_kb(arbiter, "VmHWM") / 1024,
            " MB",
            note="it imported main and forked the worker; it serves nothing",
        ),
    ]
