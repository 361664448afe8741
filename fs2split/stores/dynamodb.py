"""Redelivery dedup shared by every Lambda instance: one DynamoDB table, claimed with one conditional put.

The claim is AWS Lambda Powertools' idempotency pattern: ``PutItem`` if the key is absent, expired,
or its in-progress lease ran out, with ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` so a lost
claim learns why without a second read. The table (partition key ``id``, TTL on ``expires_at`` in
epoch seconds) is created by the deploy, never here. boto3 is imported only when this store is
configured (the Lambda runtime ships it); the client is created on the first claim, once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

from fs2split.stores.dedup import Claim
from fs2split.stores.records import IN_PROGRESS, Record, StoreError, Windows, new_owner, now_ms

# Lost when the key is absent, expired, or an in-progress lease ran out. "status" and "owner" are
# DynamoDB reserved words, hence the names.
_CLAIMABLE = "attribute_not_exists(id) OR expires_at_ms <= :now OR (#status = :in_progress AND lease_until_ms <= :now)"
_NAMES = {"#status": "status"}


class DynamoDbDedupStore:
    def __init__(
        self,
        *,
        table: str,
        windows: Windows,
        env: Mapping[str, str],
        # Short: claim and done sit around the delivery's own budget, inside the function's timeout and the
        # lease (budget + 5 s). DynamoDB answers in milliseconds in-region; two attempts end within ~3 s.
        connect_timeout_s: float = 0.5,
        read_timeout_s: float = 1.0,
    ) -> None:
        self._table = table
        self._windows = windows
        # The SDK's standard variables, read from the same environment as every other setting.
        self._endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None
        self._region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._client: Any = None
        self._lock = threading.Lock()
        # key -> the owner token of our live claim, so release() deletes only our own record.
        self._owners: dict[str, str] = {}

    def claim(self, key: str, *, lease_s: float | None = None) -> Claim:
        at = now_ms()
        owner = new_owner()
        record = self._windows.claim_record(owner, at, lease_s)
        client = self._connect()
        try:
            client.put_item(
                TableName=self._table,
                Item=_item(key, record),
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues={":now": {"N": str(at)}, ":in_progress": {"S": IN_PROGRESS}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as error:  # botocore's errors are only importable with it
            old = _lost_to(error)
            if old is None:
                raise StoreError(_describe(error)) from None
            if old.owner == owner:
                # Our own put, retried by botocore after its answer was lost: the claim is ours.
                self._owners[key] = owner
                return Claim.NEW
            # The condition saw something blocking; if the clocks disagree on when, it is still in flight.
            return old.blocks(at) or Claim.IN_FLIGHT
        self._owners[key] = owner
        return Claim.NEW

    def done(self, key: str) -> None:
        owner = self._owners.pop(key, "")
        try:
            self._connect().put_item(TableName=self._table, Item=_item(key, self._windows.done_record(owner, now_ms())))
        except Exception as error:
            raise StoreError(_describe(error)) from None

    def release(self, key: str) -> None:
        owner = self._owners.pop(key, None)
        if owner is None:
            return  # never claimed here: nothing of ours to delete
        try:
            self._connect().delete_item(
                TableName=self._table,
                Key={"id": {"S": key}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except Exception as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return  # our lease ran out and another claim took the key over: leave theirs alone
            raise StoreError(_describe(error)) from None

    def _connect(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = _client(self._endpoint, self._region, self._timeouts)
                    except Exception as error:  # no region, a broken profile...
                        raise StoreError(f"DynamoDB client: {type(error).__name__}") from None
        return self._client


def _client(endpoint: str | None, region: str | None, timeouts: tuple[float, float]) -> Any:
    import boto3  # only when this store is configured: about 150 ms of import (BENCHMARKS.md)
    from botocore.config import Config

    config = Config(
        connect_timeout=timeouts[0],
        read_timeout=timeouts[1],
        # One retry: the claim sits in front of the delivery's own time budget.
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, config=config)


def _item(key: str, record: Record) -> dict[str, dict[str, str]]:
    return {
        "id": {"S": key},
        "status": {"S": record.status},
        # The TTL attribute (epoch seconds) only lets DynamoDB sweep; the code checks expires_at_ms.
        "expires_at": {"N": str(math.ceil(record.expires_at_ms / 1000))},
        "expires_at_ms": {"N": str(record.expires_at_ms)},
        "lease_until_ms": {"N": str(record.lease_until_ms)},
        "owner": {"S": record.owner},
    }


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str):
            return code
    return ""


def _lost_to(error: Exception) -> Record | None:
    """The record a failed conditional put lost to, or None when the error is not a lost claim."""
    if _error_code(error) != "ConditionalCheckFailedException":
        return None
    item = getattr(error, "response", {}).get("Item")
    if not isinstance(item, dict):
        # Without ALL_OLD (an old emulator): it existed and blocked; treat it as in flight.
        return Record(IN_PROGRESS, 2**62, 2**62)
    try:
        return Record(
            status=str(item["status"]["S"]),
            expires_at_ms=int(item["expires_at_ms"]["N"]),
            lease_until_ms=int(item["lease_until_ms"]["N"]),
            owner=str(item.get("owner", {}).get("S", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        # A record this code did not write: it blocked the claim, so it is not ours to take.
        return Record(IN_PROGRESS, 2**62, 2**62)


def _describe(error: Exception) -> str:
    """One line without the request: the error code (or class), never credentials or the item."""
    return f"DynamoDB {_error_code(error) or type(error).__name__}"
