"""Post a request through either real entry point in main.py: the functions-framework app (Cloud
Functions) or ``lambda_handler`` with a Function URL event (AWS). The instance is built from
``os.environ`` on the first request, as a cold start builds it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions_framework import create_app

import main
from tests.conftest import event_json

ENTRY_POINTS = ("cloud_functions", "lambda")
_MAIN = str(Path(main.__file__))


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def post(entry: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    headers = headers or {}
    if entry == "cloud_functions":
        client = create_app("fs2split", _MAIN).test_client()
        reply = client.post(path, data=body, headers=headers, content_type="application/json")
        return Answer(reply.status_code, reply.get_json(), {k.lower(): v for k, v in reply.headers.items()})
    event = copy.deepcopy(event_json("lambda-function-url.json"))
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["body"] = body.decode()
    event["isBase64Encoded"] = False
    event["headers"].update({k.lower(): v for k, v in headers.items()})
    result = main.lambda_handler(event, None)
    return Answer(
        result["statusCode"], json.loads(result["body"]), {k.lower(): v for k, v in result["headers"].items()}
    )
