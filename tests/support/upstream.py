"""A loopback HTTP server standing in for FullStory's REST API and Harness FME's (Split's) backend.

One ``FakeUpstream`` answers, on 127.0.0.1 and a free port:

- FullStory: ``GET /v2/users/{id}``, ``POST /v2/events`` and ``POST /v2/events/batch`` (both with
  ``Idempotency-Key`` caching: a key seen with another body is a 400, as FullStory errors then),
  ``GET /v2/events/batch/{id}`` and ``GET /v2/events/batch/{id}/errors`` (a job's outcome is set with
  ``set_job``; paged by ``next_page_token``); all require ``Authorization: Basic <key>``.
- FME events API: ``POST /api/events/bulk`` (``Authorization: Bearer <sdk key>``, JSON array, 202).
- The backend the real ``splitio`` SDK polls in normal (non-localhost) mode: ``/api/splitChanges``,
  ``/api/segmentChanges/<name>``, ``/api/v2/auth``, and any other ``/api/...`` call (impressions, telemetry).

Every request is recorded (``requests``, ``calls()``); faults (status, headers, delay, connection reset) can be
scripted per route; accepted events are kept apart (``fme_events()``, ``fullstory_events()``) so tests can tell
"the client tried" from "the upstream stored it".

It is also the upstream of a benchmark, so it speaks HTTP/1.1 keep-alive, sets TCP_NODELAY and writes each
response in a single ``sendall``: a head/body split write meets the client's delayed ACK and adds ~40 ms.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeUpstream", "Fault", "Recorded"]

_HOST = "127.0.0.1"
_MAX_LINE = 65537


@dataclass
class Fault:
    """One scripted misbehaviour, consumed by the next request matching its script.

    ``Fault()`` (all defaults) answers normally, so a script can let some requests through.
    A 2xx ``status`` with ``body=None`` keeps the normal body and still stores the events: that is how a test
    simulates "the upstream accepted it but the answer came too late" (with ``delay``).
    """

    status: int = 0  # 0 = answer normally; else answer this status
    body: bytes | str | dict[str, Any] | list[Any] | None = None  # None: normal body (2xx) or a JSON error
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "1"}
    delay: float = 0.0  # seconds to sleep before answering (slow answer / client read timeout)
    reset: bool = False  # drop the connection with a TCP RST and no answer at all


@dataclass
class Recorded:
    """One request as the upstream saw it."""

    method: str
    path: str  # as sent (still percent-encoded), without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    at: float  # time.monotonic() on arrival
    client_port: int = 0  # the client's source port: equal ports = one reused keep-alive connection
    status: int | None = None  # status answered; None while pending, or when reset / dropped on stop()
    fault: Fault | None = None  # the scripted fault applied to this request, if any

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Side effect (storing events, caching an idempotent answer) applied only when a 2xx is actually
    # about to be sent, so faulted or dropped requests store nothing.
    commit: Callable[[], None] | None = None


@dataclass
class _Segment:
    keys: set[str]
    ever: set[str]  # every key the segment ever held, to report removals to an SDK that is behind
    change_number: int


def _json_answer(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def _fs_error(status: int, code: str, message: str) -> _Answer:
    return _json_answer(status, {"code": code, "message": message})


def _encode_body(body: bytes | str | dict[str, Any] | list[Any]) -> tuple[bytes, str]:
    if isinstance(body, dict | list):
        return json.dumps(body).encode(), "application/json"
    raw = body.encode() if isinstance(body, str) else body
    try:
        json.loads(raw)
    except ValueError:
        return raw, "text/plain; charset=utf-8"
    return raw, "application/json"


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _signed32(text: str) -> int:
    # Split seeds are signed 32-bit ints; derive them from the name so evaluations are reproducible.
    value = zlib.crc32(text.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def _int_arg(query: Mapping[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    return int(values[0]) if values else default  # ValueError -> 400 by the caller


def _has_credentials(rec: Recorded, scheme: str) -> bool:
    """``Authorization: <scheme> <something>``; the fake accepts any key."""
    given, _, credentials = rec.headers.get("authorization", "").partition(" ")
    return given == scheme and bool(credentials.strip())


def _check_fs_event(event: Any) -> str | None:
    """The minimal checks FullStory applies to a CreateEvent (its public "Create Events" API); None when valid."""
    if not isinstance(event, dict):
        return "event must be a JSON object"
    name = event.get("name")
    if not isinstance(name, str) or not name:
        return "name is required"
    session, user = event.get("session"), event.get("user")
    if session is not None and not isinstance(session, dict):
        return "session must be an object"
    if user is not None and not isinstance(user, dict):
        return "user must be an object"
    if user is not None and session is not None and "id" in session:
        return "specify either session.id or user, not both"
    return None


class _Server(ThreadingHTTPServer):
    # Handler threads are daemons and never joined: stop() must not wait for clients' idle keep-alive
    # connections. It shuts those sockets down instead (see FakeUpstream.stop).
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.stopping = threading.Event()
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__((_HOST, 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall without network.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError | ValueError):
            return  # clients hanging up mid-request are expected in fault tests; stay quiet
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
    disable_nagle_algorithm = True  # TCP_NODELAY on the accepted socket
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.request)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.conns_lock:
                self.server.conns.discard(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no per-request stderr noise

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        arrived = time.monotonic()
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(_json_answer(400, {"code": "invalid_argument", "message": "malformed body framing"}))
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        target = urlsplit(self.path)
        rec = Recorded(
            method=self.command,
            path=target.path,
            query=parse_qs(target.query, keep_blank_values=True),
            headers=headers,
            body=body,
            at=arrived,
            client_port=int(self.client_address[1]),
        )
        up = self.server.upstream
        fault = up._arrive(rec)  # recorded and fault picked in arrival order
        wait = up.latency + (fault.delay if fault else 0.0)
        # Waiting on the stop event, not time.sleep, lets stop() cut a long delay short.
        if (wait > 0 and self.server.stopping.wait(wait)) or self.server.stopping.is_set():
            self._reset()
            return
        if fault is not None and fault.reset:
            self._reset()
            return
        answer = up._route(rec)
        if fault is not None and fault.status:
            answer = _apply_fault(answer, fault)
        if answer.commit is not None and 200 <= answer.status < 300:
            answer.commit()  # before the write, so a client seeing the answer also sees the stored events
        rec.status = answer.status
        self._send(answer)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline(_MAX_LINE).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(_MAX_LINE)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _send(self, answer: _Answer) -> None:
        status = answer.status
        body = b"" if status < 200 or status in (204, 304) else answer.body
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        merged = {name.lower(): (name, value) for name, value in answer.headers.items()}
        merged.pop("content-length", None)
        merged.pop("transfer-encoding", None)
        if merged.get("connection", ("", ""))[1].lower() == "close":
            self.close_connection = True
        merged["content-length"] = ("Content-Length", str(len(body)))
        if self.close_connection:
            merged["connection"] = ("Connection", "close")
        head = "".join(f"{name}: {value}\r\n" for name, value in merged.values())
        raw = f"HTTP/1.1 {status} {reason}\r\n{head}\r\n".encode("latin-1") + body
        try:
            self.wfile.write(raw)  # ONE sendall for status line, headers and body (see module docstring)
        except OSError:
            self.close_connection = True  # the client gave up (read timeout) before the answer

    def _reset(self) -> None:
        """Drop the connection with an RST and no answer."""
        self.close_connection = True
        sock: socket.socket = self.request
        with contextlib.suppress(OSError):
            # Linger on, timeout 0: close() discards the connection with an RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket (makefile); release it so close() really closes the fd now.
        # wfile is a plain wrapper without such a reference and must stay open for the base class's flush().
        self.rfile.close()
        sock.close()


def _apply_fault(answer: _Answer, fault: Fault) -> _Answer:
    ok = 200 <= fault.status < 300
    headers = dict(answer.headers) if ok else {}
    if fault.body is not None:
        body, content_type = _encode_body(fault.body)
        headers["Content-Type"] = content_type
    elif ok:
        body = answer.body
    else:
        body = json.dumps({"code": "injected_fault", "message": f"injected HTTP {fault.status}"}).encode()
        headers["Content-Type"] = "application/json"
    headers.update(fault.headers)
    # Events count as stored only if the upstream would have accepted them and the fault answers 2xx.
    commit = answer.commit if ok and 200 <= answer.status < 300 else None
    return _Answer(fault.status, body, headers, commit)


class FakeUpstream:
    """FullStory REST API + FME backend on one loopback port. Use ``with FakeUpstream() as up:``."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency  # seconds added before every answer (benchmarks simulate a distant upstream)
        self.users: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.RLock()
        self._scripts: list[tuple[str, str, deque[Fault]]] = []
        self._fme_posts: list[list[dict[str, Any]]] = []
        self._fs_events: list[dict[str, Any]] = []
        self._fs_jobs: dict[str, list[dict[str, Any]]] = {}
        self._idempotent: dict[str, bytes] = {}  # Idempotency-Key -> body of the answer already given
        self._idempotent_request: dict[str, bytes] = {}  # Idempotency-Key -> the request body it came with
        self._job_outcomes: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # job id -> (status, errors)
        self.errors_page_size = 100
        self._flags: dict[str, dict[str, Any]] = {}
        self._segments: dict[str, _Segment] = {}
        self._change_number = 0
        # FME refuses (400) any bulk request holding an event this returns True for: to isolate a bad event.
        self.fme_refuses: Callable[[dict[str, Any]], bool] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        if self._server is None:
            self._server = _Server(self)
            # A short poll interval keeps stop() (server.shutdown) fast.
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeUpstream", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.stopping.set()  # wakes handlers sleeping on a delay; they drop their connection
        server.shutdown()
        server.server_close()
        with server.conns_lock:
            conns = list(server.conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes handlers blocked reading the next keep-alive request
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def fullstory_url(self) -> str:
        return self.url  # FULLSTORY_API_URL

    @property
    def split_events_url(self) -> str:
        return self.url + "/api"  # SPLIT_EVENTS_URL; events arrive at /api/events/bulk

    @property
    def split_sdk_url(self) -> str:
        # For get_factory(sdk_api_base_url=, events_api_base_url=, auth_api_base_url=, telemetry_api_base_url=).
        # No trailing slash: the SDK appends one itself and a second one ends up in the path.
        return self.url + "/api"

    def sdk_urls(self) -> dict[str, str]:
        """Keyword arguments pointing every ``splitio.get_factory`` base URL at this server."""
        base = self.split_sdk_url
        return {
            "sdk_api_base_url": base,
            "events_api_base_url": base,
            "auth_api_base_url": base,
            "telemetry_api_base_url": base,
        }

    # --- test set-up -----------------------------------------------------------------------------------------

    def add_user(self, fs_id: str, uid: str | None, **extra: Any) -> None:
        """Serve ``GET /v2/users/{fs_id}``; ``uid=None`` is an anonymous user (no "uid" field)."""
        user: dict[str, Any] = {
            "id": fs_id,
            "display_name": uid or "",
            "email": f"{uid}@example.com" if uid else "",
            "is_being_deleted": False,
            "properties": {},
        }
        if uid is not None:
            user["uid"] = uid
        user.update(extra)
        with self._lock:
            self.users[fs_id] = user

    def script(self, method: str, path_prefix: str, *faults: Fault) -> None:
        """Answer the next requests matching ``method`` ("*" = any) and ``path_prefix`` with ``faults``, in
        order; normal behaviour resumes once they are used up. Earlier scripts are consumed first."""
        with self._lock:
            self._scripts.append((method.upper(), path_prefix, deque(faults)))

    def clear_scripts(self) -> None:
        """Drop the scripted faults not consumed yet: the outage is over."""
        with self._lock:
            self._scripts.clear()

    def faults_left(self) -> int:
        """Scripted faults not consumed yet (assert 0 to prove a client made every expected attempt)."""
        with self._lock:
            return sum(len(faults) for _, _, faults in self._scripts)

    def add_flag(
        self,
        name: str,
        treatments: Sequence[str] = ("on", "off"),
        default: str = "off",
        traffic_type: str = "user",
        *,
        whitelist: Mapping[str, Iterable[str]] | None = None,
        segments: Mapping[str, str] | None = None,
        percentages: Mapping[str, int] | None = None,
        killed: bool = False,
        traffic_allocation: int = 100,
        configurations: Mapping[str, str] | None = None,
        sets: Iterable[str] = (),
    ) -> None:
        """Serve a feature flag to the real splitio SDK (adding or replacing ``name`` bumps the change number).

        Conditions in evaluation order: ``whitelist`` {treatment: keys}, then ``segments`` {segment name:
        treatment} (see ``add_segment``), then the rollout: ``percentages`` {treatment: percent, summing to 100}
        or 100 % ``default``. ``killed`` makes every key get ``default``.
        """
        names = list(treatments)
        rollout = dict(percentages) if percentages else {default: 100}
        wanted = [default, *(whitelist or {}), *(segments or {}).values(), *rollout]
        if unknown := [t for t in wanted if t not in names]:
            raise ValueError(f"treatments {unknown} are not in {names}")
        if sum(rollout.values()) != 100:
            raise ValueError(f"percentages must sum to 100, not {sum(rollout.values())}")

        def condition(kind: str, matcher: dict[str, Any], sizes: Mapping[str, int], label: str) -> dict[str, Any]:
            return {
                "conditionType": kind,
                "matcherGroup": {
                    "combiner": "AND",
                    "matchers": [
                        {
                            "keySelector": {"trafficType": traffic_type, "attribute": None},
                            "negate": False,
                            "userDefinedSegmentMatcherData": None,
                            "whitelistMatcherData": None,
                            "unaryNumericMatcherData": None,
                            "betweenMatcherData": None,
                            "dependencyMatcherData": None,
                            "booleanMatcherData": None,
                            "stringMatcherData": None,
                            **matcher,
                        }
                    ],
                },
                # Every treatment appears (size 0 if unused), as in real definitions: the SDK's manager
                # lists a flag's treatments from its partitions.
                "partitions": [{"treatment": t, "size": sizes.get(t, 0)} for t in names],
                "label": label,
            }

        conditions = []
        for treatment, keys in (whitelist or {}).items():
            key_list = [keys] if isinstance(keys, str) else sorted(keys)
            matcher = {"matcherType": "WHITELIST", "whitelistMatcherData": {"whitelist": key_list}}
            conditions.append(condition("WHITELIST", matcher, {treatment: 100}, "whitelisted"))
        for segment, treatment in (segments or {}).items():
            matcher = {"matcherType": "IN_SEGMENT", "userDefinedSegmentMatcherData": {"segmentName": segment}}
            conditions.append(condition("ROLLOUT", matcher, {treatment: 100}, f"in segment {segment}"))
        conditions.append(condition("ROLLOUT", {"matcherType": "ALL_KEYS"}, rollout, "default rule"))
        with self._lock:
            self._flags[name] = {
                "trafficTypeName": traffic_type,
                "name": name,
                "trafficAllocation": traffic_allocation,
                "trafficAllocationSeed": _signed32(name + "#traffic"),
                "seed": _signed32(name),
                "status": "ACTIVE",
                "killed": killed,
                "defaultTreatment": default,
                "changeNumber": self._next_change_number(),
                "algo": 2,  # murmur3, what current definitions use
                "conditions": conditions,
                "configurations": dict(configurations or {}),
                "sets": sorted(sets),
                "impressionsDisabled": False,
                "prerequisites": [],
            }

    def add_segment(self, name: str, keys: Iterable[str]) -> None:
        """Serve segment ``name`` (used by ``add_flag(segments=...)``) holding exactly ``keys``."""
        with self._lock:
            new = set(keys)
            old = self._segments.get(name)
            ever = (old.ever if old else set()) | new
            self._segments[name] = _Segment(new, ever, self._next_change_number())

    def set_job(self, job_id: str, status: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        """What ``GET /v2/events/batch/{job_id}`` (and ``/errors``) report from now on: ``status`` and the
        failed events; ``imports`` is the job's size minus the errors. A job id never created works too."""
        with self._lock:
            self._job_outcomes[job_id] = (status, [dict(e) for e in errors])

    def _next_change_number(self) -> int:
        # Change numbers are epoch milliseconds at Split; strictly increasing is what the SDK relies on.
        self._change_number = max(self._change_number + 1, int(time.time() * 1000))
        return self._change_number

    # --- inspection ------------------------------------------------------------------------------------------

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def fme_events(self) -> list[dict[str, Any]]:
        """Events accepted (2xx-answered) by ``POST /api/events/bulk``, flattened across posts."""
        with self._lock:
            return [event for post in self._fme_posts for event in post]

    def fme_posts(self) -> list[list[dict[str, Any]]]:
        """Accepted ``/api/events/bulk`` bodies, one list per post (to assert batching)."""
        with self._lock:
            return [list(post) for post in self._fme_posts]

    def fullstory_jobs(self) -> dict[str, list[dict[str, Any]]]:
        """Accepted batch import jobs: id -> the create-event requests it holds, in creation order."""
        with self._lock:
            return {job: list(events) for job, events in self._fs_jobs.items()}

    def fullstory_events(self) -> list[dict[str, Any]]:
        """Events accepted by ``POST /v2/events`` (one per Idempotency-Key) and accepted batches."""
        with self._lock:
            return list(self._fs_events)

    def reset(self) -> None:
        """Forget requests, scripts and accepted events; keep users, flags and segments."""
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self._fme_posts.clear()
            self._fs_events.clear()
            self._fs_jobs.clear()
            self._idempotent.clear()
            self._idempotent_request.clear()
            self._job_outcomes.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # --- request handling (called from handler threads) -----------------------------------------------------

    def _arrive(self, rec: Recorded) -> Fault | None:
        with self._lock:
            self.requests.append(rec)
            for method, prefix, faults in self._scripts:
                if faults and method in ("*", rec.method) and rec.path.startswith(prefix):
                    rec.fault = faults.popleft()
                    return rec.fault
        return None

    def _route(self, rec: Recorded) -> _Answer:
        path, method = rec.path, rec.method
        if path.startswith("/v2/"):
            if not _has_credentials(rec, "Basic"):
                return _fs_error(401, "unauthorized", "missing or malformed Authorization: Basic <API key>")
            if method == "GET" and path.startswith("/v2/users/"):
                return self._get_user(unquote(path[len("/v2/users/") :]))
            if method == "POST" and path == "/v2/events":
                return self._create_event(rec)
            if method == "POST" and path == "/v2/events/batch":
                return self._create_batch(rec)
            if method == "GET" and path.startswith("/v2/events/batch/"):
                job, _, rest = path[len("/v2/events/batch/") :].partition("/")
                if rest == "errors":
                    return self._batch_errors(unquote(job), rec)
                if not rest:
                    return self._batch_status(unquote(job))
            return _fs_error(404, "not_found", f"no route {method} {path}")
        if path == "/api" or path.startswith("/api/"):
            if not _has_credentials(rec, "Bearer"):
                return _json_answer(401, {"code": 401, "message": "missing Authorization: Bearer <SDK key>"})
            try:
                if method == "POST" and path == "/api/events/bulk":
                    return self._events_bulk(rec)
                if method == "GET" and path == "/api/splitChanges":
                    return self._split_changes(rec)
                if method == "GET" and path.startswith("/api/segmentChanges/"):
                    return self._segment_changes(rec, unquote(path[len("/api/segmentChanges/") :]))
            except ValueError as exc:  # malformed since / rbSince
                return _json_answer(400, {"code": 400, "message": str(exc)})
            if method == "GET" and path == "/api/v2/auth":
                # pushEnabled false: the SDK falls back to polling even with streamingEnabled on.
                return _json_answer(200, {"pushEnabled": False, "token": ""})
            return _json_answer(200, {})  # impressions, impression counts, unique keys, telemetry...
        return _json_answer(404, {"code": "not_found", "message": f"no route {method} {path}"})

    def _get_user(self, fs_id: str) -> _Answer:
        with self._lock:
            user = self.users.get(fs_id)
            if user is None:
                return _fs_error(404, "resource_not_found", f"user {fs_id!r} not found")
            return _json_answer(200, user)

    def _create_event(self, rec: Recorded) -> _Answer:
        try:
            event = rec.json()
        except ValueError:
            return _fs_error(400, "invalid_argument", "body is not valid JSON")
        if error := _check_fs_event(event):
            return _fs_error(400, "invalid_argument", error)
        key = rec.headers.get("idempotency-key")
        if cached := self._cached(key, rec.body):
            return cached
        body = json.dumps({"id": uuid.uuid4().hex}).encode()

        def commit() -> None:
            with self._lock:
                if self._remember(key, rec.body, body):
                    self._fs_events.append(event)

        return _Answer(200, body, {"Content-Type": "application/json"}, commit)

    def _cached(self, key: str | None, request_body: bytes) -> _Answer | None:
        """The answer already given under this Idempotency-Key, or FullStory's error for a key reused with
        another body; None for a new key."""
        with self._lock:
            if key is None or key not in self._idempotent:
                return None
            if self._idempotent_request[key] != request_body:
                return _fs_error(400, "invalid_argument", "Idempotency-Key was used with a different request body")
            return _Answer(200, self._idempotent[key], {"Content-Type": "application/json"})

    def _remember(self, key: str | None, request_body: bytes, answer: bytes) -> bool:
        """Cache an accepted answer; False when a concurrent twin with the same key got there first."""
        if key is None:
            return True
        if key in self._idempotent:
            return False
        self._idempotent[key], self._idempotent_request[key] = answer, request_body
        return True

    def _create_batch(self, rec: Recorded) -> _Answer:
        try:
            payload = rec.json()
        except ValueError:
            return _fs_error(400, "invalid_argument", "body is not valid JSON")
        events = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(events, list) or not events:
            return _fs_error(400, "invalid_argument", "requests must be a non-empty array")
        if len(events) > 50_000:
            return _fs_error(400, "invalid_argument", "at most 50000 requests in one batch")
        for i, event in enumerate(events):
            if error := _check_fs_event(event):
                return _fs_error(400, "invalid_argument", f"requests[{i}]: {error}")
        key = rec.headers.get("idempotency-key")
        if cached := self._cached(key, rec.body):
            return cached
        job = uuid.uuid4().hex
        answer = _json_answer(200, {"job": {"id": job, "status": "PROCESSING", "created": _now_iso()}})

        def commit() -> None:
            with self._lock:
                if self._remember(key, rec.body, answer.body):
                    self._fs_jobs[job] = events
                    self._fs_events.extend(events)

        answer.commit = commit
        return answer

    def _batch_status(self, job: str) -> _Answer:
        with self._lock:
            outcome = self._job_outcomes.get(job)
            if job not in self._fs_jobs and outcome is None:
                return _fs_error(404, "resource_not_found", f"batch job {job!r} not found")
            size = len(self._fs_jobs.get(job, ()))
        status, errors = outcome or ("COMPLETED", [])
        payload: dict[str, Any] = {"imports": max(0, size - len(errors)), "job": {"id": job, "status": status}}
        if status != "PROCESSING":
            payload["errors"] = len(errors)
            payload["job"]["finished"] = _now_iso()
        return _json_answer(200, payload)

    def _batch_errors(self, job: str, rec: Recorded) -> _Answer:
        with self._lock:
            outcome = self._job_outcomes.get(job)
            if job not in self._fs_jobs and outcome is None:
                return _fs_error(404, "resource_not_found", f"batch job {job!r} not found")
        errors = outcome[1] if outcome else []
        token = (rec.query.get("next_page_token") or ["0"])[0]
        start = int(token) if token.isdigit() else 0
        page = errors[start : start + self.errors_page_size]
        payload: dict[str, Any] = {"results": page, "total_records": len(errors)}
        if start + self.errors_page_size < len(errors):
            payload["next_page_token"] = str(start + self.errors_page_size)
        return _json_answer(200, payload)

    def _events_bulk(self, rec: Recorded) -> _Answer:
        try:
            events = rec.json()
        except ValueError:
            return _json_answer(400, {"code": 400, "message": "body is not valid JSON"})
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return _json_answer(400, {"code": 400, "message": "body must be a JSON array of events"})
        refuses = self.fme_refuses
        if refuses is not None and any(refuses(e) for e in events):
            # Like FME with one event it will not take: the whole request is refused.
            return _json_answer(400, {"code": 400, "message": "an event in the request is invalid"})

        def commit() -> None:
            with self._lock:
                self._fme_posts.append(events)

        return _Answer(202, commit=commit)

    def _split_changes(self, rec: Recorded) -> _Answer:
        # Spec 1.3: {"ff": {"d", "s", "t"}, "rbs": {...}}. The SDK loops until t == s for both parts.
        since = _int_arg(rec.query, "since", -1)
        rb_since = _int_arg(rec.query, "rbSince", -1)
        wanted = {s for v in rec.query.get("sets", []) for s in v.split(",") if s}
        with self._lock:
            flags = list(self._flags.values())
            changed = [
                json.loads(json.dumps(f))  # a copy: later add_flag calls must not mutate an answer
                for f in flags
                if f["changeNumber"] > since and (not wanted or wanted & set(f["sets"]))
            ]
            till = max([since, *(f["changeNumber"] for f in flags)])
        return _json_answer(
            200,
            {"ff": {"d": changed, "s": since, "t": till}, "rbs": {"d": [], "s": rb_since, "t": rb_since}},
        )

    def _segment_changes(self, rec: Recorded, name: str) -> _Answer:
        since = _int_arg(rec.query, "since", -1)
        with self._lock:
            seg = self._segments.get(name)
            if seg is None or since >= seg.change_number:
                payload = {"name": name, "added": [], "removed": [], "since": since, "till": since}
            else:
                payload = {
                    "name": name,
                    "added": sorted(seg.keys),
                    "removed": [] if since == -1 else sorted(seg.ever - seg.keys),
                    "since": since,
                    "till": seg.change_number,
                }
        return _json_answer(200, payload)
