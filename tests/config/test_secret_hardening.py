"""Secrets under hostile configuration and slow secret managers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.config.keys import Keys
from fs2split.http_types import Request
from tests.conftest import event_bytes


def post(instance: Any, path: str = "/fullstory") -> Any:
    return handle(Request("POST", path, {}, {}, event_bytes("fullstory-custom-event.json")), instance)


@pytest.mark.parametrize("name", ["FULLSTORY_WEBHOOK_SECRET", "SPLIT_API_KEY", "SPLIT_IMPRESSIONS_TOKEN"])
def test_a_whitespace_only_secret_is_a_503_settings_invalid_naming_it(make_instance: Any, name: str) -> None:
    instance = make_instance(**{name: " \t "})

    response = post(instance)

    assert (response.status, response.body["reason"]) == (503, "settings_invalid")
    assert name in response.body["message"]


def test_an_empty_webhook_secret_still_means_not_set(make_instance: Any) -> None:
    instance = make_instance(FULLSTORY_WEBHOOK_SECRET="", FS2SPLIT_KEY_FALLBACK="fullstory_user_id")

    response = post(instance)

    assert (response.status, response.body["reason"]) == (200, "dry_run")


class HangingFetch:
    """A secret manager that does not answer: records each reference it was asked for."""

    def __init__(self, seconds: float) -> None:
        self.asked: list[str] = []
        self._release = threading.Event()
        self._seconds = seconds

    def __call__(self, reference: str) -> str:
        self.asked.append(reference)
        self._release.wait(self._seconds)
        return "fetched-late-value"

    def release(self) -> None:
        self._release.set()


def test_a_hanging_secret_manager_against_a_3s_budget_is_answered_within_4s(make_instance: Any) -> None:
    env = {"SPLIT_API_KEY": "k", "FULLSTORY_WEBHOOK_SECRET_SECRET": "projects/p/secrets/hook/versions/1"}
    instance = make_instance(FS2SPLIT_RETRY_BUDGET_SECONDS="3", **env)
    fetch = HangingFetch(30)
    instance.keys = Keys(env, fetch=fetch, legacy_dir=None)

    started = time.monotonic()
    response = post(instance)
    elapsed = time.monotonic() - started
    fetch.release()

    assert (response.status, response.body["reason"]) == (503, "secret_unavailable")
    assert elapsed < 4
    assert fetch.asked == ["projects/p/secrets/hook/versions/1"]


def test_a_secret_that_arrives_after_the_budget_serves_the_next_request(make_instance: Any) -> None:
    env = {"FULLSTORY_WEBHOOK_SECRET_SECRET": "projects/p/secrets/hook/versions/1"}
    instance = make_instance(FS2SPLIT_RETRY_BUDGET_SECONDS="1", **env)
    fetch = HangingFetch(1.5)
    instance.keys = Keys(env, fetch=fetch, legacy_dir=None)

    first = post(instance)
    time.sleep(1)
    second = post(instance)

    assert first.body["reason"] == "secret_unavailable"
    assert (second.status, second.body["reason"]) == (401, "signature_invalid")  # the secret is known now
    assert len(fetch.asked) == 1
