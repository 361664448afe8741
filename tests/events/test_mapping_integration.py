"""The mapping through the real functions-framework app (``create_app(...).test_client()``), as Cloud
Functions serves ``main.py``. The instance is built from the process environment, as in production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from fs2split import instance
from tests.support.fme_judge import assert_fme_accepts

ROOT = Path(__file__).resolve().parents[2]
EVENTS = Path(__file__).parent
MAPPING = {
    "events": {"Plan *": {"event_type": "plan_changed", "traffic_type": "account", "key": "account.id"}},
    "properties": {"exclude": ["*email*"], "redact": ["account.plan"]},
}


@pytest.fixture
def client_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A functions-framework test client whose instance reads FS2SPLIT_MAPPING from the environment.

    conftest's clean_environment has already removed every fs2split variable of the machine.
    """
    monkeypatch.setenv("FS2SPLIT_DRY_RUN", "true")

    def build(mapping: dict[str, Any]) -> Any:
        monkeypatch.setenv("FS2SPLIT_MAPPING", json.dumps(mapping))
        instance.reset()
        return create_app("fs2split", str(ROOT / "main.py")).test_client()

    yield build
    instance.reset()


def streams_plan_event() -> bytes:
    body = json.loads((EVENTS / "fullstory-checkout-mapping-streams.json").read_text())
    body["name"] = "Plan Upgraded"
    body["properties"]["account"]["plan"] = "enterprise"
    return json.dumps(body).encode()


def test_cloud_function_maps_a_streams_event_by_the_mapping(client_with: Any) -> None:
    client = client_with(MAPPING)

    response = client.post("/fullstory", data=streams_plan_event(), content_type="application/json")

    assert response.status_code == 200
    [event] = response.get_json()["events"]
    assert (event["eventTypeId"], event["trafficTypeName"], event["key"]) == ("plan_changed", "account", "acme-7")
    assert event["properties"]["account.plan"] == "[redacted]"
    assert not [name for name in event["properties"] if "email" in name.lower()]
    assert_fme_accepts(event)


def test_cloud_function_answers_503_to_webhooks_and_healthz_while_the_mapping_is_invalid(client_with: Any) -> None:
    client = client_with({"events": {"Plan *": {"traffic_type": "Account"}}})

    webhook = client.post("/fullstory", data=streams_plan_event(), content_type="application/json")
    health = client.get("/healthz")

    assert (webhook.status_code, webhook.get_json()["reason"]) == (503, "mapping_invalid")
    assert (health.status_code, health.get_json()["reason"]) == (503, "mapping_invalid")
    assert webhook.get_json()["message"] == health.get_json()["message"]
