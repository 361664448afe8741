"""Redrive on Pub/Sub over its REST API: pull from the dead-letter subscription, publish to the topic the
webhook writes to, and acknowledge only what the topic accepted.

Plain ``requests`` against ``PUBSUB_EMULATOR_HOST`` when it is set (the emulator takes no credentials);
otherwise ``google.auth``'s default credentials through an authorized session. The dead-letter
subscription is ``FS2SPLIT_PUBSUB_DEAD_LETTER_SUBSCRIPTION``, else the only subscription of the dead-letter
topic named by the drain subscription's dead-letter policy.
"""

from __future__ import annotations

import os
import time
from typing import Any

import requests

from fs2split.redrive import RedriveError, RedriveResult

API = "https://pubsub.googleapis.com/v1"
SCOPE = "https://www.googleapis.com/auth/pubsub"
# Pub/Sub's pull takes up to 1,000 messages; 100 keeps one round's memory small (a message is up to 10 MB,
# fs2split's are far smaller). Each call gets this long before it counts as failed.
_BATCH = 100
_CALL_TIMEOUT_S = 30.0
# ``returnImmediately`` may answer empty while messages exist: a few empty pulls in a row mean empty.
_EMPTY_PULLS = 3


class PubSub:
    """The few Pub/Sub REST calls redrive needs, on one session."""

    def __init__(self, session: requests.Session | None = None, env: dict[str, str] | None = None) -> None:
        e = os.environ if env is None else env
        host = e.get("PUBSUB_EMULATOR_HOST", "").strip()
        self.base = f"http://{host}/v1" if host else API
        self.session = session or (requests.Session() if host else _authorized_session())

    def call(self, verb: str, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call; a failure or a malformed answer becomes a one-line RedriveError without upstream text."""
        what = f"Pub/Sub {verb} {name.rsplit('/', 1)[-1] if verb == 'GET' else name.rsplit(':', 1)[-1]}"
        try:
            reply = self.session.request(verb, f"{self.base}/{name}", json=body, timeout=_CALL_TIMEOUT_S)
        except requests.RequestException as error:
            raise RedriveError(f"{what} failed: {type(error).__name__}") from None
        if reply.status_code != 200:
            raise RedriveError(f"{what} failed: HTTP {reply.status_code}")
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise RedriveError(f"{what} answered 200 with no JSON object")
        return answer


def redrive(
    topic: str,
    subscription: str | None,
    *,
    dead_letter_subscription: str | None = None,
    dry_run: bool = False,
    timeout_s: float = 120.0,
    api: PubSub | None = None,
) -> RedriveResult:
    api = api or PubSub()
    deadline = time.monotonic() + timeout_s
    source = dead_letter_subscription or _find_dead_letters(api, subscription)
    if dry_run:
        return RedriveResult(source, _count(api, source, deadline), dry_run=True)
    moved, empty_pulls = 0, 0
    while time.monotonic() < deadline:
        received = _pull(api, source)
        if not received:
            empty_pulls += 1
            if empty_pulls >= _EMPTY_PULLS:
                return RedriveResult(source, moved, method="pull-publish-ack")
            continue
        empty_pulls = 0
        ack_ids = [item["ackId"] for item in received]
        messages = [_republished(item.get("message", {})) for item in received]
        try:
            published = api.call("POST", f"{topic}:publish", {"messages": messages})
            if len(published.get("messageIds", [])) != len(messages):
                raise RedriveError("Pub/Sub publish answered without an id for every message")
        except RedriveError as error:
            _give_back(api, source, ack_ids)
            return RedriveResult(source, moved, method="pull-publish-ack", error=f"{error}; {moved} moved")
        try:
            api.call("POST", f"{source}:acknowledge", {"ackIds": ack_ids})
        except RedriveError as error:
            # The copies are on the topic and the originals come back: the drain's dedup absorbs the repeat.
            return RedriveResult(source, moved + len(ack_ids), method="pull-publish-ack", error=str(error))
        moved += len(ack_ids)
    return RedriveResult(source, moved, method="pull-publish-ack", error=f"stopped at the time bound; {moved} moved")


def _authorized_session() -> requests.Session:
    try:
        import google.auth
        from google.auth.transport.requests import AuthorizedSession
    except ImportError:
        raise RedriveError("google-auth is not installed: pip install google-auth") from None
    try:
        credentials, _project = google.auth.default(scopes=[SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise RedriveError("no Google credentials: run gcloud auth application-default login") from None
    return AuthorizedSession(credentials)


def _find_dead_letters(api: PubSub, subscription: str | None) -> str:
    if not subscription:
        raise RedriveError("set FS2SPLIT_PUBSUB_SUBSCRIPTION or FS2SPLIT_PUBSUB_DEAD_LETTER_SUBSCRIPTION")
    policy = api.call("GET", subscription).get("deadLetterPolicy")
    topic = policy.get("deadLetterTopic") if isinstance(policy, dict) else None
    if not isinstance(topic, str) or not topic:
        raise RedriveError("the subscription has no dead-letter policy, so it has no dead letters to redrive")
    subscriptions = api.call("GET", f"{topic}/subscriptions").get("subscriptions", [])
    if not isinstance(subscriptions, list) or len(subscriptions) != 1:
        count = len(subscriptions) if isinstance(subscriptions, list) else 0
        raise RedriveError(
            f"the dead-letter topic has {count} subscriptions, not one: set FS2SPLIT_PUBSUB_DEAD_LETTER_SUBSCRIPTION"
        )
    return str(subscriptions[0])


def _pull(api: PubSub, subscription: str) -> list[dict[str, Any]]:
    received = api.call("POST", f"{subscription}:pull", {"maxMessages": _BATCH, "returnImmediately": True})
    items = received.get("receivedMessages", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("ackId"), str) for i in items):
        raise RedriveError("Pub/Sub pull answered 200 with malformed messages")
    return items


def _republished(message: dict[str, Any]) -> dict[str, Any]:
    """The same data and attributes; Pub/Sub gives the copy a new id and publish time."""
    copy: dict[str, Any] = {"data": message.get("data", "")}
    if message.get("attributes"):
        copy["attributes"] = message["attributes"]
    if message.get("orderingKey"):
        copy["orderingKey"] = message["orderingKey"]
    return copy


def _count(api: PubSub, subscription: str, deadline: float) -> int:
    """Pub/Sub has no depth call outside Cloud Monitoring: pull and hold every message, then give all back."""
    held: list[str] = []
    empty_pulls = 0
    try:
        while time.monotonic() < deadline and empty_pulls < _EMPTY_PULLS:
            items = _pull(api, subscription)
            empty_pulls = 0 if items else empty_pulls + 1
            held.extend(item["ackId"] for item in items)
            if items:
                # Hold them past the count (the default deadline is 10 s), or they come back and count twice.
                ack_ids = [item["ackId"] for item in items]
                api.call("POST", f"{subscription}:modifyAckDeadline", {"ackIds": ack_ids, "ackDeadlineSeconds": 600})
    finally:
        _give_back(api, subscription, held)
    return len(held)


def _give_back(api: PubSub, subscription: str, ack_ids: list[str]) -> None:
    """An ack deadline of 0 returns messages at once; should that fail, they return when the deadline ends."""
    for start in range(0, len(ack_ids), 1000):
        try:
            api.call(
                "POST",
                f"{subscription}:modifyAckDeadline",
                {"ackIds": ack_ids[start : start + 1000], "ackDeadlineSeconds": 0},
            )
        except RedriveError:
            return
