"""Shared dedup stores (docs/dedup.md): what each backend adds to a cold start, and to every webhook.

Import cost: each sample is a fresh interpreter that has already imported ``requests`` (fs2split always
has) and times what the store's first claim adds: boto3 and a DynamoDB client; ``google.auth`` and its
requests transport (the Firestore REST store); and, for comparison, ``google.cloud.firestore`` with a
client, the SDK the REST store replaces. Medians of alternating samples.

Round trip: against each real emulator (moto in server mode, the Firestore emulator), started here and
stopped after, the store's own calls for one delivered webhook (claim, then done) and for a
duplicate (one claim of a done key), on one warm client. An emulator that is not installed is skipped,
and says so on stderr; its figures are then absent.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import requests

from bench.common import ROOT, Metric, clean_env, median, percentile
from fs2split.stores.dedup import DedupStore
from fs2split.stores.dynamodb import DynamoDbDedupStore
from fs2split.stores.firestore import FirestoreDedupStore
from fs2split.stores.records import Windows
from tests.support import emulators

_TIMER = "import requests, time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
IMPORTS = {
    "dynamodb": "import boto3; boto3.client('dynamodb', region_name='us-east-1')",
    "firestore_rest": "import google.auth, google.auth.transport.requests",
    "firestore_sdk": "from google.cloud import firestore; firestore.Client(project='bench')",
}
_WINDOWS = Windows(lease_s=13, done_s=3600)


def run(repetitions: int, round_trips: int) -> list[Metric]:
    costs = import_costs(repetitions)
    metrics = [
        Metric("dedup.import_dynamodb_ms", "DynamoDB store: boto3 + client import", costs["dynamodb"], " ms"),
        Metric(
            "dedup.import_firestore_rest_ms",
            "Firestore store (REST): google.auth import",
            costs["firestore_rest"],
            " ms",
        ),
    ]
    if "firestore_sdk" in costs:
        metrics += [
            Metric(
                "dedup.import_firestore_sdk_ms",
                "google-cloud-firestore + client import (not used)",
                costs["firestore_sdk"],
                " ms",
            ),
            Metric(
                "dedup.firestore_rest_vs_sdk_ratio",
                "Firestore REST store import / SDK import",
                costs["firestore_rest"] / costs["firestore_sdk"],
                "×",
                "<",
                1.0,
            ),
        ]
    for backend, started in (("dynamodb", _moto), ("firestore", _firestore)):
        with started() as make_store:
            if make_store is None:
                continue
            metrics += _round_trips(backend, make_store(), round_trips)
    return metrics


def import_costs(repetitions: int) -> dict[str, float]:
    # The Firestore client reads FIRESTORE_EMULATOR_HOST, so it needs no credentials; nothing is called.
    env = clean_env(FIRESTORE_EMULATOR_HOST="127.0.0.1:9", PYTHONDONTWRITEBYTECODE="1")
    names = list(IMPORTS)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(max(1, repetitions)):
        for name in names:
            seconds = _import_seconds(IMPORTS[name], env)
            if seconds is not None:
                samples[name].append(seconds * 1000)
    return {name: median(values) for name, values in samples.items() if values}


def _import_seconds(code: str, env: dict[str, str]) -> float | None:
    out = subprocess.run(
        [sys.executable, "-c", _TIMER.format(code=code)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        print(f"bench: skipped an import figure ({code.split(';')[0]}): not installed", file=sys.stderr)
        return None
    return float(out.stdout.strip().splitlines()[-1])


def _round_trips(backend: str, store: DedupStore, count: int) -> list[Metric]:
    delivered: list[float] = []
    duplicates: list[float] = []
    store.claim(f"warm-{uuid.uuid4().hex}")  # the client's first call (connection, emulator warm-up)
    for _ in range(count):
        key = uuid.uuid4().hex
        started = time.perf_counter()
        store.claim(key)
        store.done(key)
        delivered.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        store.claim(key)
        duplicates.append((time.perf_counter() - started) * 1000)
    name = "DynamoDB (moto)" if backend == "dynamodb" else "Firestore (emulator)"
    return [
        Metric(f"dedup.{backend}_p50_ms", f"{name}: claim + done, median", median(delivered), " ms"),
        Metric(f"dedup.{backend}_p95_ms", f"{name}: claim + done, p95", percentile(delivered, 95), " ms"),
        Metric(f"dedup.{backend}_duplicate_p50_ms", f"{name}: claim of a done key, median", median(duplicates), " ms"),
        Metric(
            f"dedup.{backend}_duplicate_p95_ms", f"{name}: claim of a done key, p95", percentile(duplicates, 95), " ms"
        ),
    ]


@contextlib.contextmanager
def _moto() -> Iterator[Callable[[], DedupStore] | None]:
    reason = emulators.moto_skip_reason()
    if reason:
        print(f"bench: DynamoDB round trips skipped: {reason}", file=sys.stderr)
        yield None
        return
    server = emulators.start_moto()
    try:
        table = emulators.unique("bench")
        emulators.create_table(server, table)
        env = emulators.dynamodb_env(server, table)
        # boto3 reads credentials from the process environment; moto accepts any.
        with _process_env(emulators.AWS_TEST_ENV):
            yield lambda: DynamoDbDedupStore(table=table, windows=_WINDOWS, env=env)
    finally:
        server.stop()


@contextlib.contextmanager
def _firestore() -> Iterator[Callable[[], DedupStore] | None]:
    reason = emulators.firestore_skip_reason()
    if reason:
        print(f"bench: Firestore round trips skipped: {reason}", file=sys.stderr)
        yield None
        return
    server = emulators.start_firestore()
    session = requests.Session()
    try:
        env = emulators.firestore_env(server, emulators.unique("bench"))
        yield lambda: FirestoreDedupStore(
            collection=env["FS2SPLIT_DEDUP_TABLE"], database="(default)", windows=_WINDOWS, env=env, session=session
        )
    finally:
        session.close()
        server.stop()


@contextlib.contextmanager
def _process_env(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
