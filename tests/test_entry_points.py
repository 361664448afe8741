"""Both entry points in main.py serve the same routes with the same answers: the
functions-framework test client for Cloud Functions, and Lambda proxy events for AWS."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

import main
from fs2split.events.signature import sign
from tests.conftest import event_bytes, event_json

MAIN = str(Path(main.__file__))


@pytest.fixture
def client() -> Any:
    return create_app("fs2split", MAIN).test_client()


def lambda_event(template: str, body: bytes, *, path: str | None = None, **headers: str) -> dict[str, Any]:
    event = copy.deepcopy(event_json(template))
    if event.get("isBase64Encoded"):
        event["body"] = base64.b64encode(body).decode()
    else:
        event["body"] = body.decode()
    if path is not None:
        if "rawPath" in event:
            event["rawPath"] = path
            event["requestContext"]["http"]["path"] = path
        else:
            event["path"] = path
    event["headers"].update(headers)
    if "multiValueHeaders" in event:
        event["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
    return event


def lambda_answer(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = main.lambda_handler(event, None)
    assert result["headers"]["content-type"] == "application/json"
    assert result["isBase64Encoded"] is False
    return result["statusCode"], json.loads(result["body"])


@pytest.mark.parametrize("template", ["lambda-function-url.json", "http-api-v2-stage.json", "rest-api-v1-proxy.json"])
def test_every_lambda_event_shape_gives_the_same_dry_run_answer_as_cloud_functions(client: Any, template: str) -> None:
    body = event_bytes("fullstory-custom-event.json")
    gcp = client.post("/fullstory", data=body, content_type="application/json")

    status, answer = lambda_answer(lambda_event(template, body))

    assert (status, answer) == (gcp.status_code, gcp.get_json())
    assert answer["reason"] == "dry_run"
    assert answer["events"][0]["eventTypeId"] == "Product_Added"


@pytest.mark.parametrize("path", ["/", "/fullstory", "/fullstory/"])
def test_fullstory_webhook_is_served_on_root_and_fullstory(client: Any, path: str) -> None:
    body = event_bytes("fullstory-custom-event.json")

    gcp = client.post(path, data=body)
    status, answer = lambda_answer(lambda_event("lambda-function-url.json", body, path=path))

    assert gcp.status_code == status == 200
    assert gcp.get_json()["reason"] == answer["reason"] == "dry_run"


def test_api_gateway_stage_prefix_is_not_part_of_the_route() -> None:
    body = event_bytes("fullstory-test-event.json")

    status, answer = lambda_answer(lambda_event("http-api-v2-stage.json", body, path="/prod/fullstory"))

    assert (status, answer["reason"]) == (200, "test_event")


def test_health_answers_on_both_entry_points(client: Any) -> None:
    gcp = client.get("/healthz")
    event = lambda_event("lambda-function-url.json", b"", path="/healthz")
    event["requestContext"]["http"]["method"] = "GET"

    status, answer = lambda_answer(event)

    assert gcp.status_code == status == 200
    assert gcp.get_json() == answer


def test_unknown_route_and_wrong_method_on_both_entry_points(client: Any) -> None:
    assert client.post("/elsewhere", data=b"{}").status_code == 404
    assert client.get("/fullstory").status_code == 405
    assert lambda_answer(lambda_event("rest-api-v1-proxy.json", b"{}", path="/elsewhere"))[0] == 404


def test_lambda_body_marked_base64_but_not_base64_is_a_400() -> None:
    event = lambda_event("http-api-v2-stage.json", b"{}")
    event["body"] = "%%% not base64 %%%"

    status, answer = lambda_answer(event)

    assert (status, answer["reason"]) == (400, "invalid_json")


def test_lambda_invoked_with_a_non_http_event_gets_a_400_not_a_crash() -> None:
    assert lambda_answer({"detail-type": "Scheduled Event"})[0] == 400
    assert main.lambda_handler([], None)["statusCode"] == 400


def test_signature_header_is_found_whatever_its_case_on_both_entry_points(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("FULLSTORY_WEBHOOK_SECRET", "whsec-1")
    body = event_bytes("fullstory-test-event.json")
    stamp = str(int(time.time()))
    header = f"o:o-1AB-na1,t:{stamp},v:{sign('whsec-1', body, 'o-1AB-na1', stamp)}"

    gcp = client.post("/fullstory", data=body, headers={"FULLSTORY-SIGNATURE": header})
    status, _ = lambda_answer(lambda_event("rest-api-v1-proxy.json", body, **{"Fullstory-Signature": header}))
    unsigned = client.post("/fullstory", data=body)

    assert (gcp.status_code, status, unsigned.status_code) == (200, 200, 401)


def test_cloud_functions_refuses_an_oversized_body_before_reading_it(client: Any) -> None:
    response = client.post("/fullstory", data=b"x" * (7 * 1024 * 1024))

    assert (response.status_code, response.get_json()["reason"]) == (413, "payload_too_large")


def test_lambda_entry_point_works_without_functions_framework_or_flask() -> None:
    """The Lambda zip ships neither: main.py must import and serve without them."""
    import subprocess
    import sys

    script = (
        "import sys, json\n"
        "sys.modules['functions_framework'] = None\n"  # makes 'import functions_framework' fail
        "import main\n"
        "event = {'version': '2.0', 'rawPath': '/healthz', 'requestContext': {'http': {'method': 'GET'}}}\n"
        "answer = main.lambda_handler(event, None)\n"
        "print(json.dumps([answer['statusCode'], 'flask' in sys.modules, 'boto3' in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(MAIN).parent, capture_output=True, text=True, check=True
    )

    assert json.loads(result.stdout.splitlines()[-1]) == [200, False, False]
