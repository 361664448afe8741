"""The shared dedup settings: refused with a one-line reason naming the setting, and each store's SDK loaded
only when that store is configured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fs2split.config.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_keep_todays_per_instance_dedup_and_deliver_on_store_errors() -> None:
    settings = Settings.from_env({})

    assert (settings.dedup_store, settings.dedup_table) == ("memory", "fs2split-dedup")
    assert (settings.firestore_database, settings.dedup_on_store_error) == ("(default)", "deliver")


def test_store_names_are_read_case_insensitively() -> None:
    assert Settings.from_env({"FS2SPLIT_DEDUP_STORE": " DynamoDB "}).dedup_store == "dynamodb"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FS2SPLIT_DEDUP_STORE", "redis"),
        ("FS2SPLIT_DEDUP_TABLE", "a/b"),
        ("FS2SPLIT_DEDUP_TABLE", "ab"),
        ("FS2SPLIT_FIRESTORE_DATABASE", "Default"),
        ("FS2SPLIT_DEDUP_ON_STORE_ERROR", "ignore"),
    ],
)
def test_an_unusable_value_is_refused_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: value})

    assert str(refused.value).startswith(f"{name}:")
    assert "\n" not in str(refused.value)


_PROBE = """
import json, sys
from fs2split.app import handle
from fs2split.http_types import Request
from fs2split.instance import Instance
instance = Instance.from_env({env!r}, mapping_dir=None)
body = open("tests/events/fullstory-custom-event.json", "rb").read()
handle(Request("POST", "/fullstory", {{}}, {{}}, body), instance)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "google")
    or m.startswith("fs2split.stores."))))
"""


def loaded_after_one_webhook(env: dict[str, str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(env=env)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_memory_store_loads_no_backend_and_no_sdk() -> None:
    loaded = loaded_after_one_webhook({})

    assert not {m for m in loaded if m.startswith(("boto3", "botocore", "google.auth", "google.cloud.firestore"))}
    assert not loaded & {"fs2split.stores.dynamodb", "fs2split.stores.firestore"}


def test_the_firestore_store_on_the_emulator_loads_neither_boto3_nor_google_auth() -> None:
    # A dry run (no SPLIT_API_KEY) needs no claim, so the store is built but never called.
    loaded = loaded_after_one_webhook({"FS2SPLIT_DEDUP_STORE": "firestore", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"})

    assert "fs2split.stores.firestore" in loaded
    assert not {m for m in loaded if m.startswith(("boto3", "botocore", "google.auth"))}
