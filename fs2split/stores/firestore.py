"""Redelivery dedup shared by every Cloud Functions instance: one Firestore collection, over REST.

A claim is a create-if-absent (``POST ...?documentId=K``, 409 when it exists). When the existing
record expired or its lease ran out, the claim takes it over with a ``PATCH`` guarded by the
record's ``updateTime``: of any number of racing takeovers exactly one matches it. REST over the
instance's own pooled ``requests`` session, authorised by ``google.auth``, costs a fraction of
``google-cloud-firestore``'s import (BENCHMARKS.md). ``FIRESTORE_EMULATOR_HOST`` points it at the
emulator, which needs no credentials. The collection's TTL policy on ``expires_at`` (a timestamp)
is created by the deploy; the code never trusts it to have run.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests

from fs2split.clients.upstream import budget, remaining
from fs2split.stores.dedup import Claim
from fs2split.stores.records import Record, StoreError, Windows, new_owner, now_ms

SCOPE = "https://www.googleapis.com/auth/datastore"
PRODUCTION = "https://firestore.googleapis.com/v1/"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# Every store call (retries included) ends within this, or within what is left of the request's budget.
_CALL_BUDGET_S = 1.5


class FirestoreDedupStore:
    def __init__(
        self,
        *,
        collection: str,
        database: str,
        windows: Windows,
        env: Mapping[str, str],
        session: requests.Session,
        timeouts: tuple[float, float] = (1.0, 2.0),
        call_budget_s: float = _CALL_BUDGET_S,
    ) -> None:
        self._collection = collection
        self._database = database
        self._windows = windows
        self._session = session
        self._timeouts = timeouts
        self._call_budget_s = call_budget_s
        self._emulator = env.get("FIRESTORE_EMULATOR_HOST", "").strip()
        self._project = env.get("GOOGLE_CLOUD_PROJECT", "").strip()
        self._credentials: Any = None
        self._lock = threading.Lock()
        # key -> the updateTime of our live claim, so release() deletes only our own record.
        self._claims: dict[str, str] = {}

    def claim(self, key: str, *, lease_s: float | None = None) -> Claim:
        at = now_ms()
        owner = new_owner()
        fields = _fields(self._windows.claim_record(owner, at, lease_s))
        with _store_budget(self._call_budget_s):
            created = self._create(key, fields)
            if created.status_code == 200:
                self._claims[key] = _update_time(created)
                return Claim.NEW
            if created.status_code != 409:
                raise StoreError(_describe("create", created))
            for _ in range(3):  # a record exists: read it, then take it over if it no longer blocks
                current = self._call("GET", self._doc_url(key))
                if current.status_code == 404:  # released meanwhile: try the create again
                    created = self._create(key, fields)
                    if created.status_code == 200:
                        self._claims[key] = _update_time(created)
                        return Claim.NEW
                    continue
                if current.status_code != 200:
                    raise StoreError(_describe("read", current))
                record, stamp = _record(current)
                if record.owner == owner:
                    self._claims[key] = stamp  # our own create, retried after its answer was lost
                    return Claim.NEW
                blocked = record.blocks(at)
                if blocked is not None:
                    return blocked
                taken = self._commit({"update": self._document(key, fields), "currentDocument": {"updateTime": stamp}})
                if taken.status_code == 200:
                    self._claims[key] = _committed_time(taken)
                    return Claim.NEW
                if not _lost_race(taken):
                    raise StoreError(_describe("takeover", taken))
            return Claim.IN_FLIGHT  # three races lost in a row: someone else holds it now

    def done(self, key: str) -> None:
        self._claims.pop(key, None)
        fields = _fields(self._windows.done_record("", now_ms()))
        with _store_budget(self._call_budget_s):
            # Without a precondition: whoever holds the key now, it was delivered.
            answer = self._commit({"update": self._document(key, fields)})
        if answer.status_code != 200:
            raise StoreError(_describe("done", answer))

    def release(self, key: str) -> None:
        stamp = self._claims.pop(key, None)
        if stamp is None:
            return  # never claimed here: nothing of ours to delete
        with _store_budget(self._call_budget_s):
            answer = self._commit({"delete": self._name(key), "currentDocument": {"updateTime": stamp}})
        # A lost race: our lease ran out and another claim took the key over. 404: already gone.
        if answer.status_code not in (200, 404) and not _lost_race(answer):
            raise StoreError(_describe("release", answer))

    def _create(self, key: str, fields: dict[str, Any]) -> requests.Response:
        return self._call("POST", self._collection_url(), params={"documentId": _doc_id(key)}, body=fields)

    def _commit(self, write: dict[str, Any]) -> requests.Response:
        # Preconditions go in a commit's body: the emulator ignores ``currentDocument.updateTime``
        # as a PATCH or DELETE query parameter (measured), which would let two takeovers both win.
        base = self._base()
        return self._call("POST", f"{base}{self._root()}/documents:commit", whole={"writes": [write]})

    def _document(self, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"name": self._name(key), "fields": fields}

    def _root(self) -> str:
        self._base()  # the project may come from the credentials, fetched on first use
        return f"projects/{self._project}/databases/{self._database}"

    def _name(self, key: str) -> str:
        return f"{self._root()}/documents/{self._collection}/{_doc_id(key)}"

    def _collection_url(self) -> str:
        base = self._base()
        return f"{base}{self._root()}/documents/{self._collection}"

    def _doc_url(self, key: str) -> str:
        base = self._base()
        return f"{base}{self._name(key)}"

    def _base(self) -> str:
        if self._emulator:
            if not self._project:
                raise StoreError("Firestore emulator: GOOGLE_CLOUD_PROJECT is not set")
            return f"http://{self._emulator}/v1/"
        if not self._project or self._credentials is None:
            self._authorise()
        return PRODUCTION

    def _authorise(self) -> None:
        with self._lock:
            if self._credentials is not None:
                return
            try:
                import google.auth  # only when this store is configured, outside the emulator

                credentials, project = google.auth.default(scopes=[SCOPE])
            except Exception as error:  # DefaultCredentialsError and friends
                raise StoreError(f"Firestore credentials: {type(error).__name__}") from None
            self._project = self._project or (project or "")
            if not self._project:
                raise StoreError("Firestore: no project (set GOOGLE_CLOUD_PROJECT)")
            self._credentials = credentials

    def _headers(self) -> dict[str, str]:
        if self._emulator:
            return {"Authorization": "Bearer owner"}  # the emulator's admin token: rules do not apply
        headers: dict[str, str] = {}
        with self._lock:
            if not self._credentials.valid:
                from google.auth.transport.requests import Request

                try:
                    self._credentials.refresh(Request(self._session))
                except Exception as error:  # RefreshError, TransportError
                    raise StoreError(f"Firestore credentials: {type(error).__name__}") from None
            self._credentials.apply(headers)
        return headers

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        whole: Any = None,
    ) -> requests.Response:
        """``body``: a document's fields; ``whole``: the request body as it is."""
        try:
            headers = self._headers()
            left = remaining()
            read = self._timeouts[1] if left is None else max(0.1, min(self._timeouts[1], left))
            return self._session.request(
                method,
                url,
                params=params,
                json=whole if body is None else {"fields": body},
                headers=headers,
                timeout=(self._timeouts[0], read),
            )
        except requests.RequestException as error:
            raise StoreError(f"Firestore {method.lower()}: {type(error).__name__}") from None


@contextmanager
def _store_budget(seconds: float) -> Iterator[None]:
    left = remaining()
    with budget(seconds if left is None else max(0.5, min(seconds, left))):
        yield


def _doc_id(key: str) -> str:
    # Document ids may not hold "/" and are at most 1,500 bytes: anything unusual is hashed.
    return key if _SAFE_ID.match(key) else hashlib.sha256(key.encode()).hexdigest()


def _timestamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fields(record: Record) -> dict[str, Any]:
    return {
        "status": {"stringValue": record.status},
        # What the TTL policy acts on; the code reads the integers below.
        "expires_at": {"timestampValue": _timestamp(record.expires_at_ms)},
        "expires_at_ms": {"integerValue": str(record.expires_at_ms)},
        "lease_until_ms": {"integerValue": str(record.lease_until_ms)},
        "owner": {"stringValue": record.owner},
    }


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        raise StoreError(f"Firestore: HTTP {answer.status_code} with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise StoreError(f"Firestore: HTTP {answer.status_code} with an unexpected body")
    return data


def _update_time(answer: requests.Response) -> str:
    stamp = _json(answer).get("updateTime")
    if not isinstance(stamp, str) or not stamp:
        raise StoreError("Firestore: a written document without updateTime")
    return stamp


def _committed_time(answer: requests.Response) -> str:
    results = _json(answer).get("writeResults")
    stamp = (
        results[0].get("updateTime") if isinstance(results, list) and results and isinstance(results[0], dict) else None
    )
    if not isinstance(stamp, str) or not stamp:
        raise StoreError("Firestore: a commit without updateTime")
    return stamp


def _record(answer: requests.Response) -> tuple[Record, str]:
    data = _json(answer)
    stamp = data.get("updateTime")
    fields = data.get("fields")
    if not isinstance(stamp, str) or not isinstance(fields, dict):
        raise StoreError("Firestore: a document without fields or updateTime")
    try:
        record = Record(
            status=str(fields["status"]["stringValue"]),
            expires_at_ms=int(fields["expires_at_ms"]["integerValue"]),
            lease_until_ms=int(fields["lease_until_ms"]["integerValue"]),
            owner=str(fields.get("owner", {}).get("stringValue", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        # Not a record this code wrote: expire it at once so a claim takes it over, guarded as usual.
        record = Record("unknown", 0, 0)
    return record, stamp


def _lost_race(answer: requests.Response) -> bool:
    """The precondition failed: the record changed since we read it. Any other 400 is a real error."""
    if answer.status_code in (409, 412):
        return True
    return answer.status_code == 400 and "FAILED_PRECONDITION" in _describe("", answer)


def _describe(operation: str, answer: requests.Response) -> str:
    """One line: the HTTP status and Firestore's status word, never the URL or a token."""
    status = ""
    try:
        error = answer.json().get("error", {})
        status = str(error.get("status", ""))[:40] if isinstance(error, dict) else ""
    except (ValueError, AttributeError):
        pass
    word = re.sub(r"[^A-Z_]", "", status)
    return f"Firestore {operation}: HTTP {answer.status_code}{' ' + word if word else ''}"
