"""Real queue emulators for queue-mode tests, started on 127.0.0.1 and free ports, stopped by the test:
moto's SQS in server mode, and the Cloud SDK's Pub/Sub emulator."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

PUBSUB_EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoSqs:
    """moto in server mode: a real HTTP SQS endpoint, reached through boto3 like the cloud."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def client(self) -> Any:
        import boto3

        return boto3.client("sqs", endpoint_url=self.url, region_name="us-east-1", **_creds())

    def stop(self) -> None:
        self._server.stop()


def _creds() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class PubSubEmulator:
    """The Cloud SDK's Pub/Sub emulator (Java), driven over its REST API."""

    def __init__(self) -> None:
        if not PUBSUB_EMULATOR.exists() or shutil.which("java") is None:
            raise RuntimeError(f"the Pub/Sub emulator needs {PUBSUB_EMULATOR} and java")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._process = subprocess.Popen(
            [str(PUBSUB_EMULATOR), "--host=127.0.0.1", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() ends the JVM the script started
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url, timeout=0.5)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the Pub/Sub emulator did not start")

    def put(self, resource: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.put(f"{self.url}/v1/{resource}", json=body or {}, timeout=5)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def post(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(f"{self.url}/v1/{resource}", json=body, timeout=5)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
