"""Real emulators for the shared dedup stores, started and stopped by the tests themselves.

- Firestore: the Cloud SDK's emulator (a Java jar), when the machine image has it.
- DynamoDB: moto in server mode, as its own process (``python -m moto.server``).

Each listens on 127.0.0.1, on a free port. ``skip_reason()`` says why a backend cannot run here;
only a missing binary is a reason to skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import requests

FIRESTORE_JAR = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
FIRESTORE_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
PROJECT = "fs2split-test"
# moto accepts any credentials; boto3 refuses to sign without some.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "moto-secret-never-logged",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def firestore_skip_reason() -> str | None:
    if not FIRESTORE_JAR.is_file():
        return f"the Firestore emulator is not installed ({FIRESTORE_JAR} is absent)"
    if shutil.which("java") is None:
        return "the Firestore emulator needs Java, and no java is on PATH"
    return None


def moto_skip_reason() -> str | None:
    try:
        import flask  # noqa: F401 - moto's server mode runs on it
        import moto.server  # noqa: F401
    except ImportError as error:
        return f"moto's server mode is not installed ({error}); pip install -r requirements-dev.txt"
    return None


class Emulator:
    """A child process serving HTTP on 127.0.0.1:port, stopped by ``stop()``."""

    def __init__(self, command: list[str], port: int, ready_path: str = "/", *, startup_s: float = 30) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"
        self._log = open(os.devnull, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                requests.get(self.url + ready_path, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{command[0]} did not start on {self.host}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def start_firestore() -> Emulator:
    port = free_port()
    java = shutil.which("java") or "java"
    command = [java, "-Duser.language=en", "-cp", str(FIRESTORE_JAR), FIRESTORE_MAIN, "start"]
    emulator = Emulator([*command, "--host=127.0.0.1", f"--port={port}"], port)
    # Its first write takes 0.6 s or more (more on a busy machine): pay it here, not in a store's 2 s timeout.
    try:
        requests.post(
            f"{emulator.url}/v1/projects/{PROJECT}/databases/(default)/documents/warm-up",
            json={"fields": {}},
            headers={"Authorization": "Bearer owner"},
            timeout=60,
        )
    except requests.RequestException:
        emulator.stop()
        raise
    return emulator


def start_moto() -> Emulator:
    port = free_port()
    return Emulator([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, "/moto-api/")


def firestore_env(emulator: Emulator, collection: str) -> dict[str, str]:
    return {
        "FS2SPLIT_DEDUP_STORE": "firestore",
        "FS2SPLIT_DEDUP_TABLE": collection,
        "FIRESTORE_EMULATOR_HOST": emulator.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
    }


def dynamodb_env(emulator: Emulator, table: str) -> dict[str, str]:
    return {
        "FS2SPLIT_DEDUP_STORE": "dynamodb",
        "FS2SPLIT_DEDUP_TABLE": table,
        "AWS_ENDPOINT_URL_DYNAMODB": emulator.url,
        **AWS_TEST_ENV,
    }


def create_table(emulator: Emulator, table: str) -> None:
    """What the deploy does (Terraform, serverless.aws.yml): the function never creates it."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=emulator.url, region_name="us-east-1", **_keys())
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def _keys() -> Mapping[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def dynamodb_item(emulator: Emulator, table: str, key: str) -> dict[str, object] | None:
    import boto3

    client = boto3.client("dynamodb", endpoint_url=emulator.url, region_name="us-east-1", **_keys())
    return client.get_item(TableName=table, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")


def firestore_document(emulator: Emulator, collection: str, key: str) -> dict[str, object] | None:
    url = f"{emulator.url}/v1/projects/{PROJECT}/databases/(default)/documents/{collection}/{key}"
    answer = requests.get(url, headers={"Authorization": "Bearer owner"}, timeout=5)
    return answer.json() if answer.status_code == 200 else None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[Emulator]:
    """One Firestore emulator for the session; each test uses its own collection."""
    reason = firestore_skip_reason()
    if reason:
        pytest.skip(reason)
    emulator = start_firestore()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Emulator]:
    """One moto server for the session; each test uses its own table."""
    reason = moto_skip_reason()
    if reason:
        pytest.skip(reason)
    emulator = start_moto()
    yield emulator
    emulator.stop()
