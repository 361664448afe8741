"""Tests of the FakeUpstream test server (tests/support/upstream.py) itself."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support import upstream as upstream_module
from tests.support.upstream import FakeUpstream, Fault

FS = {"Authorization": "Basic fs-test-key"}
FME = {"Authorization": "Bearer sdk-test-key"}
EVENT = {
    "name": "Product Added",
    "properties": {"price": 58.99},
    "user": {"uid": "u1"},
    "session": {"use_most_recent": True},
}
FME_EVENT = {
    "eventTypeId": "product_added",
    "trafficTypeName": "user",
    "key": "u1",
    "timestamp": 1578602990433,
    "value": None,
    "properties": {"price": 58.99},
}


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


def test_urls_point_at_one_loopback_port(up: FakeUpstream) -> None:
    assert up.url == f"http://127.0.0.1:{up.port}"
    assert up.fullstory_url == up.url
    assert up.split_events_url == up.url + "/api"
    assert up.split_sdk_url == up.url + "/api"
    assert set(up.sdk_urls().values()) == {up.url + "/api"}


def test_not_started_has_no_url() -> None:
    with pytest.raises(RuntimeError):
        _ = FakeUpstream().url


# --- FullStory ----------------------------------------------------------------------------------------------


def test_user_lookup_known_anonymous_encoded_and_unknown(up: FakeUpstream) -> None:
    up.add_user("6915774531905556", "jane", display_name="Jane", properties={"plan": "pro"})
    up.add_user("anon 1/2", None)

    known = requests.get(f"{up.fullstory_url}/v2/users/6915774531905556", headers=FS, timeout=5)
    assert known.status_code == 200
    assert known.json() == {
        "id": "6915774531905556",
        "uid": "jane",
        "display_name": "Jane",
        "email": "jane@example.com",
        "is_being_deleted": False,
        "properties": {"plan": "pro"},
    }

    anonymous = requests.get(f"{up.url}/v2/users/anon%201%2F2", headers=FS, timeout=5)
    assert anonymous.status_code == 200
    assert anonymous.json()["id"] == "anon 1/2"
    assert "uid" not in anonymous.json()

    unknown = requests.get(f"{up.url}/v2/users/nobody", headers=FS, timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "resource_not_found"
    assert unknown.json()["message"]

    recorded = up.calls("GET", "/v2/users/")
    assert [r.path for r in recorded] == ["/v2/users/6915774531905556", "/v2/users/anon%201%2F2", "/v2/users/nobody"]
    assert recorded[0].headers["authorization"] == "Basic fs-test-key"  # names lower-cased
    assert [r.status for r in recorded] == [200, 200, 404]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sdk-key"}, {"Authorization": "Basic "}])
def test_fullstory_requires_basic_auth(up: FakeUpstream, headers: dict[str, str]) -> None:
    up.add_user("1", "jane")
    for answer in (
        requests.get(f"{up.url}/v2/users/1", headers=headers, timeout=5),
        requests.post(f"{up.url}/v2/events", json=EVENT, headers=headers, timeout=5),
        requests.post(f"{up.url}/v2/events/batch", json={"requests": [EVENT]}, headers=headers, timeout=5),
    ):
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthorized"
    assert up.fullstory_events() == []


@pytest.mark.parametrize(
    "event",
    [
        {"properties": {}},  # no name
        {"name": ""},
        {"name": "x", "session": {"id": "6915774531905556:5557778531805533"}, "user": {"uid": "u1"}},  # both forms
    ],
)
def test_create_event_rejects_what_fullstory_rejects(up: FakeUpstream, event: dict[str, Any]) -> None:
    answer = requests.post(f"{up.url}/v2/events", json=event, headers=FS, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_argument"
    assert up.fullstory_events() == []


def test_create_event_accepts_either_identity_form(up: FakeUpstream) -> None:
    by_session = {"name": "x", "session": {"id": "6915774531905556:5557778531805533"}}
    for event in (EVENT, by_session):
        answer = requests.post(f"{up.url}/v2/events", json=event, headers=FS, timeout=5)
        assert answer.status_code == 200
        assert answer.json()["id"]
    assert up.fullstory_events() == [EVENT, by_session]


def test_idempotency_key_returns_cached_answer_and_stores_once(up: FakeUpstream) -> None:
    def post(key: str | None) -> requests.Response:
        headers = {**FS, "Idempotency-Key": key} if key else FS
        return requests.post(f"{up.url}/v2/events", json=EVENT, headers=headers, timeout=5)

    first, repeat, other = post("k1"), post("k1"), post("k2")
    assert first.status_code == repeat.status_code == other.status_code == 200
    assert repeat.json() == first.json()
    assert other.json() != first.json()
    assert len(up.fullstory_events()) == 2
    post(None)
    post(None)  # without a key every post is a new event
    assert len(up.fullstory_events()) == 4
    assert up.calls("POST", "/v2/events")[1].headers["idempotency-key"] == "k1"


def test_failed_attempt_is_not_cached_under_its_idempotency_key(up: FakeUpstream) -> None:
    up.script("POST", "/v2/events", Fault(status=500))
    headers = {**FS, "Idempotency-Key": "k1"}
    failed = requests.post(f"{up.url}/v2/events", json=EVENT, headers=headers, timeout=5)
    retried = requests.post(f"{up.url}/v2/events", json=EVENT, headers=headers, timeout=5)
    again = requests.post(f"{up.url}/v2/events", json=EVENT, headers=headers, timeout=5)
    assert (failed.status_code, retried.status_code, again.status_code) == (500, 200, 200)
    assert again.json() == retried.json()
    assert up.fullstory_events() == [EVENT]


def test_batch_import_job(up: FakeUpstream) -> None:
    second = {"name": "Checkout", "session": {"id": "1:2"}}
    created = requests.post(f"{up.url}/v2/events/batch", json={"requests": [EVENT, second]}, headers=FS, timeout=5)
    assert created.status_code == 200
    job = created.json()["job"]
    assert job["status"] == "PROCESSING"

    status = requests.get(f"{up.url}/v2/events/batch/{job['id']}", headers=FS, timeout=5)
    assert status.json()["job"]["status"] == "COMPLETED"
    assert (status.json()["imports"], status.json()["errors"]) == (2, 0)
    assert up.fullstory_events() == [EVENT, second]

    assert requests.get(f"{up.url}/v2/events/batch/nope", headers=FS, timeout=5).status_code == 404
    invalid = requests.post(f"{up.url}/v2/events/batch", json={"requests": [{"x": 1}]}, headers=FS, timeout=5)
    assert invalid.status_code == 400
    assert invalid.json()["code"] == "invalid_argument"
    assert len(up.fullstory_events()) == 2


# --- FME events API -----------------------------------------------------------------------------------------


def test_fme_bulk_accepts_an_array_with_202(up: FakeUpstream) -> None:
    answer = requests.post(f"{up.split_events_url}/events/bulk", json=[FME_EVENT, FME_EVENT], headers=FME, timeout=5)
    assert answer.status_code == 202
    assert answer.content == b""
    requests.post(f"{up.split_events_url}/events/bulk", json=[FME_EVENT], headers=FME, timeout=5)
    assert up.fme_events() == [FME_EVENT] * 3
    assert [len(post) for post in up.fme_posts()] == [2, 1]
    assert up.calls("POST", "/api/events/bulk")[0].json() == [FME_EVENT, FME_EVENT]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic fs-key"}, {"Authorization": "Bearer  "}])
def test_fme_requires_bearer(up: FakeUpstream, headers: dict[str, str]) -> None:
    answer = requests.post(f"{up.split_events_url}/events/bulk", json=[FME_EVENT], headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["message"]
    assert up.fme_events() == []


@pytest.mark.parametrize("body", [b'{"eventTypeId": "x"}', b"not json", b"[1, 2]"])
def test_fme_bulk_rejects_anything_but_an_array_of_objects(up: FakeUpstream, body: bytes) -> None:
    answer = requests.post(
        f"{up.split_events_url}/events/bulk", data=body, headers={**FME, "Content-Type": "application/json"}, timeout=5
    )
    assert answer.status_code == 400
    assert answer.json()["message"]
    assert up.fme_events() == []


# --- scripted faults ----------------------------------------------------------------------------------------


def test_faults_are_consumed_in_order_then_normal_behaviour_resumes(up: FakeUpstream) -> None:
    up.add_user("1", "jane")
    up.script(
        "POST",
        "/api/events/bulk",
        Fault(status=429, headers={"Retry-After": "1"}),
        Fault(status=500),
        Fault(status=503, body={"message": "maintenance"}),
        Fault(status=502, body=b"<html>bad gateway</html>"),
    )
    url = f"{up.split_events_url}/events/bulk"
    answers = []
    for _ in range(5):
        answers.append(requests.post(url, json=[FME_EVENT], headers=FME, timeout=5))
        # Other routes are not affected by the script.
        assert requests.get(f"{up.url}/v2/users/1", headers=FS, timeout=5).status_code == 200

    assert [a.status_code for a in answers] == [429, 500, 503, 502, 202]
    assert answers[0].headers["Retry-After"] == "1"
    assert answers[1].json()["message"]  # a default JSON error body
    assert answers[2].json() == {"message": "maintenance"}
    assert answers[3].text == "<html>bad gateway</html>"
    assert up.fme_events() == [FME_EVENT]  # only the 202 stored anything
    recorded = up.calls("POST", "/api/events/bulk")
    assert [r.status for r in recorded] == [429, 500, 503, 502, 202]
    assert [r.fault is not None for r in recorded] == [True, True, True, True, False]
    assert up.faults_left() == 0


def test_fault_method_wildcard_and_pass_through(up: FakeUpstream) -> None:
    up.add_user("1", "jane")
    up.script("*", "/v2/", Fault(), Fault(status=403))  # Fault() answers normally
    first = requests.get(f"{up.url}/v2/users/1", headers=FS, timeout=5)
    second = requests.post(f"{up.url}/v2/events", json=EVENT, headers=FS, timeout=5)
    assert (first.status_code, second.status_code) == (200, 403)
    assert up.fullstory_events() == []


def test_2xx_fault_keeps_normal_body_and_stores_the_event(up: FakeUpstream) -> None:
    up.script("POST", "/v2/events", Fault(status=201, headers={"X-Extra": "yes"}))
    answer = requests.post(f"{up.url}/v2/events", json=EVENT, headers=FS, timeout=5)
    assert answer.status_code == 201
    assert answer.headers["X-Extra"] == "yes"
    assert answer.json()["id"]
    assert up.fullstory_events() == [EVENT]


def test_reset_fault_raises_connection_error_and_stores_nothing(up: FakeUpstream) -> None:
    up.script("POST", "/api/events/bulk", Fault(reset=True))
    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            session.post(f"{up.split_events_url}/events/bulk", json=[FME_EVENT], headers=FME, timeout=5)
        after = session.post(f"{up.split_events_url}/events/bulk", json=[FME_EVENT], headers=FME, timeout=5)
    assert after.status_code == 202
    assert up.fme_events() == [FME_EVENT]
    assert [r.status for r in up.calls("POST", "/api/events/bulk")] == [None, 202]


def test_reset_fault_is_a_tcp_rst(up: FakeUpstream) -> None:
    up.script("GET", "/", Fault(reset=True))
    with socket.create_connection(("127.0.0.1", up.port), timeout=5) as sock:
        sock.sendall(b"GET /v2/users/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic k\r\n\r\n")
        with pytest.raises(ConnectionResetError):  # an orderly FIN would read b"" instead
            sock.recv(1024)


def test_slow_answer_times_the_client_out_but_the_upstream_still_stored_the_events(up: FakeUpstream) -> None:
    # FME's bulk API is not idempotent: this is how a retry after a timeout duplicates events.
    up.script("POST", "/api/events/bulk", Fault(delay=0.5))
    url = f"{up.split_events_url}/events/bulk"
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.post(url, json=[FME_EVENT], headers=FME, timeout=0.1)
    assert time.monotonic() - started < 0.4
    assert up.fme_events() == []
    assert up.wait_for(lambda: len(up.fme_events()) == 1, timeout=5)
    requests.post(url, json=[FME_EVENT], headers=FME, timeout=5)
    assert up.fme_events() == [FME_EVENT, FME_EVENT]


def test_latency_is_added_to_every_answer() -> None:
    with FakeUpstream(latency=0.05) as up:
        up.script("POST", "/api/", Fault(status=500))
        with requests.Session() as session:
            for method, path, headers in [
                ("POST", "/api/events/bulk", FME),
                ("POST", "/api/events/bulk", FME),
                ("GET", "/v2/users/x", FS),
                ("GET", "/nowhere", {}),
            ]:
                started = time.monotonic()
                session.request(method, up.url + path, json=[], headers=headers, timeout=5)
                assert time.monotonic() - started >= 0.05


# --- connection handling ------------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(up: FakeUpstream) -> None:
    up.add_user("1", "jane")
    with requests.Session() as session:
        session.get(f"{up.url}/v2/users/1", headers=FS, timeout=5)
        session.post(f"{up.url}/v2/events", json=EVENT, headers=FS, timeout=5)
        session.get(f"{up.url}/v2/users/2", headers=FS, timeout=5)  # a 404 keeps the connection too
        session.get(f"{up.url}/v2/users/1", headers=FS, timeout=5)
    requests.get(f"{up.url}/v2/users/1", headers=FS, timeout=5)  # no session: a new connection
    ports = [r.client_port for r in up.requests]
    assert len(set(ports[:4])) == 1
    assert ports[4] != ports[0]


def test_connection_close_is_honoured(up: FakeUpstream) -> None:
    answer = requests.get(f"{up.url}/v2/users/1", headers={**FS, "Connection": "close"}, timeout=5)
    assert answer.headers["Connection"] == "close"


def test_accepted_sockets_have_tcp_nodelay(up: FakeUpstream) -> None:
    with requests.Session() as session:
        session.get(f"{up.url}/v2/users/1", headers=FS, timeout=5)
        server = up._server
        assert server is not None
        with server.conns_lock:
            conns = list(server.conns)
        assert conns
        assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in conns)


def test_answers_are_single_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    # With Nagle back on, a response written as head + body waits for the client's delayed ACK: measured
    # median ~44 ms per request on loopback. Written in one sendall it stays at a few milliseconds.
    monkeypatch.setattr(upstream_module._Handler, "disable_nagle_algorithm", False)
    with FakeUpstream() as up, requests.Session() as session:
        up.add_user("1", "jane")
        for method, path, body in [("GET", "/v2/users/1", None), ("POST", "/v2/events", EVENT)]:
            timings = []
            for _ in range(15):
                started = time.perf_counter()
                session.request(method, up.url + path, json=body, headers=FS, timeout=5).raise_for_status()
                timings.append(time.perf_counter() - started)
            assert statistics.median(timings) < 0.02, (method, timings)


def test_stop_is_quick_with_idle_keep_alive_and_a_pending_slow_answer() -> None:
    up = FakeUpstream().start()
    url = up.url
    errors: list[Exception] = []

    def slow_call() -> None:
        try:
            requests.get(f"{url}/v2/users/1", headers=FS, timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    with requests.Session() as idle:
        idle.get(f"{url}/v2/users/1", headers=FS, timeout=5)  # leaves an idle keep-alive connection
        up.script("GET", "/v2/users/", Fault(delay=30))
        caller = threading.Thread(target=slow_call, daemon=True)
        caller.start()
        assert up.wait_for(lambda: len(up.requests) == 2)
        started = time.monotonic()
        up.stop()
        assert time.monotonic() - started < 1.0
        caller.join(5)
        assert not caller.is_alive()
        assert errors
        assert isinstance(errors[0], requests.ConnectionError)
    up.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v2/users/1", headers=FS, timeout=1)


# --- bookkeeping --------------------------------------------------------------------------------------------


def test_calls_filter_and_recorded_fields(up: FakeUpstream) -> None:
    before = time.monotonic()
    requests.post(f"{up.url}/v2/events?debug=1&debug=2&x=", json=EVENT, headers=FS, timeout=5)
    requests.get(f"{up.url}/v2/users/1", headers=FS, timeout=5)
    requests.post(f"{up.split_events_url}/events/bulk", json=[FME_EVENT], headers=FME, timeout=5)

    assert len(up.calls()) == 3
    assert len(up.calls("post")) == 2
    assert len(up.calls(path_prefix="/v2/")) == 2
    (event_call,) = up.calls("POST", "/v2/events")
    assert event_call.path == "/v2/events"
    assert event_call.query == {"debug": ["1", "2"], "x": [""]}
    assert event_call.json() == EVENT
    assert event_call.headers["content-type"] == "application/json"
    assert before <= event_call.at <= up.calls("GET")[0].at <= time.monotonic()


def test_unknown_routes_answer_404(up: FakeUpstream) -> None:
    assert requests.get(f"{up.url}/nowhere", timeout=5).status_code == 404
    assert requests.delete(f"{up.url}/v2/users/1", headers=FS, timeout=5).status_code == 404


def test_reset_clears_traffic_but_keeps_users_and_flags(up: FakeUpstream) -> None:
    up.add_user("1", "jane")
    up.add_flag("my_flag")
    requests.post(f"{up.url}/v2/events", json=EVENT, headers={**FS, "Idempotency-Key": "k"}, timeout=5)
    requests.post(f"{up.split_events_url}/events/bulk", json=[FME_EVENT], headers=FME, timeout=5)
    up.script("GET", "/v2/users/", Fault(status=500))

    up.reset()
    assert (up.requests, up.fme_events(), up.fullstory_events(), up.faults_left()) == ([], [], [], 0)
    assert requests.get(f"{up.url}/v2/users/1", headers=FS, timeout=5).status_code == 200
    again = requests.post(f"{up.url}/v2/events", json=EVENT, headers={**FS, "Idempotency-Key": "k"}, timeout=5)
    assert again.status_code == 200
    assert up.fullstory_events() == [EVENT]  # the idempotency cache was cleared too
    changes = requests.get(f"{up.split_sdk_url}/splitChanges?s=1.3&since=-1", headers=FME, timeout=5).json()
    assert [f["name"] for f in changes["ff"]["d"]] == ["my_flag"]


def test_wait_for(up: FakeUpstream) -> None:
    assert up.wait_for(lambda: True, timeout=0)
    started = time.monotonic()
    assert not up.wait_for(lambda: False, timeout=0.1)
    assert time.monotonic() - started >= 0.1


# --- the splitio SDK backend --------------------------------------------------------------------------------


def test_split_changes_answers_since_equals_till_once_nothing_changed(up: FakeUpstream) -> None:
    def changes(since: int) -> dict[str, Any]:
        url = f"{up.split_sdk_url}/splitChanges?s=1.3&since={since}&rbSince=-1"
        answer = requests.get(url, headers=FME, timeout=5)
        assert answer.status_code == 200
        return answer.json()

    empty = changes(-1)
    assert empty == {"ff": {"d": [], "s": -1, "t": -1}, "rbs": {"d": [], "s": -1, "t": -1}}
    up.add_flag("my_flag", default="on")
    first = changes(-1)
    (flag,) = first["ff"]["d"]
    till = first["ff"]["t"]
    assert (first["ff"]["s"], flag["name"], flag["changeNumber"], flag["status"]) == (-1, "my_flag", till, "ACTIVE")
    assert changes(till)["ff"] == {"d": [], "s": till, "t": till}
    up.add_flag("other")
    later = changes(till)["ff"]
    assert [f["name"] for f in later["d"]] == ["other"]
    assert later["t"] > till
    bad = requests.get(f"{up.split_sdk_url}/splitChanges?s=1.3&since=abc", headers=FME, timeout=5)
    assert bad.status_code == 400


def test_segment_changes(up: FakeUpstream) -> None:
    def changes(since: int) -> dict[str, Any]:
        return requests.get(f"{up.split_sdk_url}/segmentChanges/beta?since={since}", headers=FME, timeout=5).json()

    assert changes(-1) == {"name": "beta", "added": [], "removed": [], "since": -1, "till": -1}
    up.add_segment("beta", ["u1", "u2"])
    first = changes(-1)
    assert (first["added"], first["removed"], first["since"]) == (["u1", "u2"], [], -1)
    assert changes(first["till"])["till"] == first["till"]
    up.add_segment("beta", ["u2", "u3"])
    second = changes(first["till"])
    assert (second["added"], second["removed"]) == (["u2", "u3"], ["u1"])


def test_add_flag_rejects_inconsistent_definitions(up: FakeUpstream) -> None:
    with pytest.raises(ValueError, match="not in"):
        up.add_flag("f", ["on", "off"], default="maybe")
    with pytest.raises(ValueError, match="sum to 100"):
        up.add_flag("f", percentages={"on": 50, "off": 40})
    with pytest.raises(ValueError, match="not in"):
        up.add_flag("f", whitelist={"v2": ["u1"]})


@pytest.mark.e2e
def test_real_splitio_sdk_evaluates_flags_and_calls_the_impression_listener(up: FakeUpstream) -> None:
    splitio = pytest.importorskip("splitio")
    from splitio.impressions import ImpressionListener

    class Listener(ImpressionListener):
        def __init__(self) -> None:
            self.data: list[dict[str, Any]] = []

        def log_impression(self, data: dict[str, Any]) -> None:
            self.data.append(data)

    up.add_flag("my_flag", ["on", "off"], default="on")
    up.add_flag("wl_flag", whitelist={"on": ["u1"]})
    up.add_segment("beta", ["u3"])
    up.add_flag("seg_flag", segments={"beta": "on"})
    up.add_flag("pct_flag", ["a", "b"], default="a", percentages={"a": 50, "b": 50})
    up.add_flag("killed_flag", default="off", percentages={"on": 100}, killed=True)
    listener = Listener()
    factory = splitio.get_factory(
        "sdk-test-key",
        **up.sdk_urls(),  # keyword arguments, not config keys: inside config they would be ignored
        config={
            "streamingEnabled": False,  # polling only: no SSE connection to a real host
            "impressionListener": listener,
            "featuresRefreshRate": 1,  # seconds; lets the late flag below arrive quickly
            "segmentsRefreshRate": 1,
            "impressionsMode": "debug",
            "IPAddressesEnabled": False,
        },
    )
    try:
        factory.block_until_ready(5)
        client = factory.client()

        assert client.get_treatment("u1", "my_flag") == "on"
        assert (client.get_treatment("u1", "wl_flag"), client.get_treatment("u2", "wl_flag")) == ("on", "off")
        assert (client.get_treatment("u3", "seg_flag"), client.get_treatment("u1", "seg_flag")) == ("on", "off")
        assert client.get_treatment("u1", "killed_flag") == "off"
        spread = Counter(client.get_treatment(f"key-{i}", "pct_flag") for i in range(200))
        assert set(spread) == {"a", "b"}
        assert sorted(factory.manager().split("pct_flag").treatments) == ["a", "b"]

        first = listener.data[0]
        impression = first["impression"]
        assert (impression.matching_key, impression.feature_name, impression.treatment, impression.label) == (
            "u1",
            "my_flag",
            "on",
            "default rule",
        )
        assert first["sdk-language-version"].startswith("python-")
        assert len(listener.data) == 6 + 200  # one impression per evaluation

        up.add_flag("late_flag", default="on")
        assert up.wait_for(lambda: "late_flag" in factory.manager().split_names(), timeout=5)
        assert client.get_treatment("u1", "late_flag") == "on"
        assert client.track("u1", "user", "purchase", 3.0, {"plan": "pro"})
    finally:
        destroyed = threading.Event()
        factory.destroy(destroyed)
        assert destroyed.wait(5)

    polls = up.calls("GET", "/api/splitChanges")
    assert polls[0].query == {"s": ["1.3"], "since": ["-1"], "rbSince": ["-1"]}
    assert up.calls("GET", "/api/segmentChanges/beta")
    assert up.calls("POST", "/api/testImpressions/bulk")  # flushed by destroy()
    assert [(e["key"], e["eventTypeId"], e["value"]) for e in up.fme_events()] == [("u1", "purchase", 3.0)]
    assert {r.headers["authorization"] for r in up.calls(path_prefix="/api/")} == {"Bearer sdk-test-key"}
    assert all(r.status == 200 or r.path == "/api/events/bulk" for r in up.requests)


def test_batch_idempotency_key_returns_the_same_job_and_refuses_another_body(up: FakeUpstream) -> None:
    headers = {**FS, "Idempotency-Key": "job-key"}
    first = requests.post(f"{up.url}/v2/events/batch", json={"requests": [EVENT]}, headers=headers, timeout=5)
    repeat = requests.post(f"{up.url}/v2/events/batch", json={"requests": [EVENT]}, headers=headers, timeout=5)
    other = requests.post(f"{up.url}/v2/events/batch", json={"requests": [EVENT, EVENT]}, headers=headers, timeout=5)

    assert (first.status_code, repeat.status_code, other.status_code) == (200, 200, 400)
    assert repeat.json()["job"]["id"] == first.json()["job"]["id"]
    assert list(up.fullstory_jobs()) == [first.json()["job"]["id"]]


def test_set_job_drives_status_and_paged_errors(up: FakeUpstream) -> None:
    up.set_job("j1", "FAILED", [{"code": "c", "message": f"m{n}"} for n in range(3)])
    up.errors_page_size = 2

    status = requests.get(f"{up.url}/v2/events/batch/j1", headers=FS, timeout=5).json()
    page1 = requests.get(f"{up.url}/v2/events/batch/j1/errors", headers=FS, timeout=5).json()
    token = page1["next_page_token"]
    page2 = requests.get(f"{up.url}/v2/events/batch/j1/errors?next_page_token={token}", headers=FS, timeout=5).json()

    assert (status["job"]["status"], status["errors"]) == ("FAILED", 3)
    assert [e["message"] for e in page1["results"] + page2["results"]] == ["m0", "m1", "m2"]
    assert "next_page_token" not in page2
