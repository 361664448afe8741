"""FullStory's batch import of server events: create a job, read its status and its errors.

``POST /v2/events/batch`` takes up to 50,000 create-event requests and imports them later; the two reads
need an Admin or Architect key (see docs/impressions-batch.md). Every answer is untrusted: a 200 without a
usable job id is not a job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fs2split.clients.fullstory_api import KeyOfBody
from fs2split.clients.upstream import Reply, Upstream, encode_json

# FullStory's documented ceiling of create-event requests in one job.
MAX_REQUESTS = 50_000
# What a job id may look like before fs2split repeats it in a response, a log line or a URL: FullStory's
# examples are short base64-ish strings ("abd123="); anything else is treated as a malformed answer.
_JOB_ID = re.compile(r"^[A-Za-z0-9_\-=.:+/]{1,200}$")


@dataclass(frozen=True)
class JobCreated:
    """The answer to a job creation: ``job_id`` is set only when FullStory accepted a well-formed job."""

    reply: Reply
    job_id: str | None = None


@dataclass(frozen=True)
class JobStatus:
    """What ``GET /v2/events/batch/{id}`` said; counts are None when FullStory left them out."""

    reply: Reply
    status: str | None = None
    imports: int | None = None
    errors: int | None = None


@dataclass(frozen=True)
class ErrorsPage:
    reply: Reply
    errors: list[dict[str, Any]]
    next_page_token: str | None = None


def valid_job_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _JOB_ID.match(value) else None


class FullStoryBatchApi:
    def __init__(self, upstream: Upstream, base_url: str, api_key: str) -> None:
        self._upstream = upstream
        self._base_url = base_url.rstrip("/") + "/v2/events/batch"
        self._headers = {"Authorization": f"Basic {api_key}", "Accept": "application/json"}

    def create_job(self, events: Iterable[dict[str, Any]], idempotency_key: KeyOfBody | None = None) -> JobCreated:
        # Encoded one event at a time, so 50,000 event dicts never exist at once; the bytes are exactly
        # encode_json({"requests": [...]}), which the Idempotency-Key is derived from.
        encoded = [encode_json(event) for event in events]
        if not 0 < len(encoded) <= MAX_REQUESTS:
            raise ValueError(f"a batch job holds 1 to {MAX_REQUESTS} requests, not {len(encoded)}")
        body = b'{"requests":[' + b",".join(encoded) + b"]}"
        del encoded
        headers = dict(self._headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key(body)
        # The job's Idempotency-Key is a digest of its exact content: a repeat after a read timeout makes no
        # second job, so the call may be sent again.
        reply = self._upstream.request("POST", self._base_url, headers=headers, data=body, repeatable=True)
        job = reply.data.get("job") if reply.ok and isinstance(reply.data, dict) else None
        job_id = valid_job_id(job.get("id")) if isinstance(job, dict) else None
        return JobCreated(reply, job_id)

    def job_status(self, job_id: str) -> JobStatus:
        reply = self._upstream.request("GET", f"{self._base_url}/{quote(job_id, safe='')}", headers=self._headers)
        data = reply.data if reply.ok and isinstance(reply.data, dict) else {}
        job = data.get("job") if isinstance(data.get("job"), dict) else {}
        status = job.get("status")
        return JobStatus(
            reply,
            status[:40] if isinstance(status, str) and status.isprintable() else None,
            _count(data.get("imports")),
            _count(data.get("errors")),
        )

    def job_errors(self, job_id: str, page_token: str | None = None) -> ErrorsPage:
        query = f"?{urlencode({'next_page_token': page_token})}" if page_token else ""
        reply = self._upstream.request(
            "GET", f"{self._base_url}/{quote(job_id, safe='')}/errors{query}", headers=self._headers
        )
        data = reply.data if reply.ok and isinstance(reply.data, dict) else {}
        # The page's list is "results" in FullStory's examples (unconfirmed for events): accept "errors" too.
        found = data.get("results", data.get("errors"))
        errors = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
        token = data.get("next_page_token")
        return ErrorsPage(reply, errors, token if isinstance(token, str) and token else None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
