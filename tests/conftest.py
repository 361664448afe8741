"""Shared fixtures: a clean environment per test, payload files, and instances built from a
given environment, the way a cold start builds them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fs2split import instance as instance_module
from fs2split.instance import Instance
from tests.support.emulators import firestore_emulator, moto_server  # noqa: F401 - session fixtures (shared dedup)

EVENTS = Path(__file__).parent / "events"
_OWN_PREFIXES = ("SPLIT_", "FULLSTORY_", "FS2SPLIT_", "GOOGLE_CLOUD_", "AWS_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees a key or setting from the machine it runs on, or a previous test's instance."""
    for name in list(os.environ):
        if name.startswith(_OWN_PREFIXES) or name == "LOG_LEVEL":
            monkeypatch.delenv(name, raising=False)
    instance_module.reset()
    yield
    instance_module.reset()


def event_bytes(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def event_json(name: str) -> Any:
    return json.loads(event_bytes(name))


@pytest.fixture
def make_instance() -> Iterator[Callable[..., Instance]]:
    built: list[Instance] = []

    def make(**env: str) -> Instance:
        # mapping_dir=None: a developer's own fs2split.yaml must not change what the tests see.
        instance = Instance.from_env(env, mapping_dir=None)
        built.append(instance)
        return instance

    yield make
    for instance in built:
        instance.upstream.close()
