"""The impressions body is parsed under a cap on the number of impressions (FS2SPLIT_IMPRESSIONS_MAX_ITEMS)."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from fs2split.app import handle
from fs2split.http_types import Request, Response
from fs2split.instance import Instance
from tests.conftest import event_json
from tests.support.upstream import FakeUpstream

PATH = "/split/impressions"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def post(instance: Instance, body: bytes) -> Response:
    return handle(Request("POST", PATH, {}, {}, body), instance)


def impressions(count: int) -> list[dict[str, Any]]:
    base = event_json("split-impressions-webhook.json")[0]
    return [{**base, "key": f"customer-{n}"} for n in range(count)]


def test_more_impressions_than_the_cap_is_a_413_and_nothing_is_sent(up: FakeUpstream, make_instance: Any) -> None:
    bridge = make_instance(
        FULLSTORY_API_KEY="fs-key", FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_IMPRESSIONS_MAX_ITEMS="3"
    )

    response = post(bridge, json.dumps(impressions(4)).encode())

    assert (response.status, response.body["reason"]) == (413, "payload_too_large")
    assert up.calls() == []


def test_as_many_impressions_as_the_cap_are_delivered(up: FakeUpstream, make_instance: Any) -> None:
    bridge = make_instance(
        FULLSTORY_API_KEY="fs-key", FULLSTORY_API_URL=up.fullstory_url, FS2SPLIT_IMPRESSIONS_MAX_ITEMS="3"
    )

    response = post(bridge, json.dumps(impressions(3)).encode())

    assert (response.status, response.body["delivered"]) == (200, 3)


def test_items_that_are_not_objects_are_counted_as_undeliverable(up: FakeUpstream, make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY="fs-key", FULLSTORY_API_URL=up.fullstory_url)
    body = json.dumps([1, "x", [{}], None, *impressions(1)]).encode()

    response = post(bridge, body)

    assert (response.status, response.body["delivered"], response.body["undeliverable"]) == (200, 1, 4)


def test_a_gzip_of_millions_of_empty_objects_is_refused_in_bounded_memory(make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY="fs-key", FS2SPLIT_DRY_RUN="true")
    bomb = gzip.compress(b"[" + b"{}," * 21_000_000 + b"{}]", compresslevel=9)  # ~64 KB, 63 MB inflated

    tracemalloc.start()
    try:
        response = post(bridge, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert (response.status, response.body["reason"]) == (413, "payload_too_large")
    assert peak < 200 * 1024 * 1024  # the inflated bytes twice; json.loads of it took 1.75 GB


def test_one_element_holding_millions_of_objects_is_refused_too(make_instance: Any) -> None:
    bridge = make_instance(FULLSTORY_API_KEY="fs-key", FS2SPLIT_DRY_RUN="true")
    body = gzip.compress(b'[{"attributes": [' + b"{}," * 2_000_000 + b"{}]}]")

    response = post(bridge, body)

    assert (response.status, response.body["reason"]) == (413, "payload_too_large")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1,]", "invalid_json"),
        (b"[1] x", "invalid_json"),
        (b"{}", "not_a_webhook"),
        (b"[", "invalid_json"),
        (b" [ ] ", "dry_run"),
    ],
)
def test_the_element_by_element_parser_keeps_json_rules(make_instance: Any, body: bytes, reason: str) -> None:
    bridge = make_instance(FULLSTORY_API_KEY="fs-key", FS2SPLIT_DRY_RUN="true")

    assert post(bridge, body).body["reason"] == reason
