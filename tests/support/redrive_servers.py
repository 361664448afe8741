"""Real queue engines for the redrive tests, started on 127.0.0.1 and free ports and stopped by the tests:
moto's SQS in server mode and the Pub/Sub emulator from the Cloud SDK."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

PUBSUB_EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's HTTP server (the same one ``moto_server`` runs) on a free port; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def pubsub_emulator_missing() -> str | None:
    if not PUBSUB_EMULATOR.exists():
        return f"the Pub/Sub emulator is not installed at {PUBSUB_EMULATOR}"
    if shutil.which("java") is None:
        return "the Pub/Sub emulator needs java"
    return None


@contextmanager
def pubsub_emulator(start_timeout_s: float = 60.0) -> Iterator[str]:
    """The Cloud SDK's Pub/Sub emulator; yields its ``host:port`` (the form ``PUBSUB_EMULATOR_HOST`` takes)."""
    port = _free_port()
    process = subprocess.Popen(
        [str(PUBSUB_EMULATOR), "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                if requests.get(f"http://{host}/", timeout=1).status_code < 500:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Pub/Sub emulator did not start")
            time.sleep(0.2)
        yield host
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
