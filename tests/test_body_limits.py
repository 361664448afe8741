"""A body over the limit is refused without being read into memory, on both entry points."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

import main

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")
LIMIT = 6 * 1024 * 1024  # the largest default route limit (impressions)


class CountingStream(io.RawIOBase):
    """An endless request body of zeros that counts how much the server read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:  # werkzeug's test client asks where the stream starts
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b"\x00" * size
        self.read_bytes += size
        return size


@pytest.fixture
def client() -> Any:
    return create_app("fs2split", MAIN).test_client()


def test_cloud_functions_refuses_a_1_gib_declared_body_without_reading_it(client: Any) -> None:
    stream = CountingStream()

    response = client.post("/fullstory", input_stream=stream, environ_overrides={"CONTENT_LENGTH": str(1024**3)})

    assert (response.status_code, json.loads(response.get_data())["reason"]) == (413, "payload_too_large")
    assert stream.read_bytes == 0


def test_cloud_functions_reads_an_undeclared_body_only_one_byte_past_the_limit(client: Any) -> None:
    stream = CountingStream()

    # No Content-Length: an endless chunked body, which gunicorn marks as terminated by the server.
    response = client.post("/fullstory", input_stream=stream, environ_overrides={"wsgi.input_terminated": True})

    assert (response.status_code, json.loads(response.get_data())["reason"]) == (413, "payload_too_large")
    assert stream.read_bytes <= LIMIT + 1 + 64 * 1024  # the limit, plus at most one buffer


class NotToBeCopied(str):
    """A Lambda body that must be measured, never encoded or decoded into a second copy."""

    __slots__ = ()

    def encode(self, *args: Any, **kwargs: Any) -> bytes:  # type: ignore[override]
        raise AssertionError("the oversized body was copied")


@pytest.mark.parametrize("base64", [False, True])
def test_lambda_refuses_an_oversized_body_from_its_length_without_copying_it(base64: bool) -> None:
    event = {
        "version": "2.0",
        "rawPath": "/fullstory",
        "requestContext": {"http": {"method": "POST"}},
        "body": NotToBeCopied("A" * (LIMIT * 2)),
        "isBase64Encoded": base64,
    }

    answer = main.lambda_handler(event, None)

    assert (answer["statusCode"], json.loads(answer["body"])["reason"]) == (413, "payload_too_large")
