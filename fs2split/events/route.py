"""``POST /`` and ``POST /fullstory``: a FullStory webhook becomes one FME event.

authenticate (signature or Stream token) → parse → guard (loop guard, then the mapping's drop) →
deduplicate (only bodies with an event time) → map (the mapping's event rule, then its property
filters) → resolve identity → deliver → outcome.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from fs2split import logs
from fs2split.clients.fme_api import FmeApi
from fs2split.clients.fullstory_api import FullStoryApi, Lookup
from fs2split.clients.statuses import Verdict
from fs2split.clients.upstream import Reply, budget
from fs2split.config.keys import FULLSTORY_API_KEY, SPLIT_API_KEY, SecretUnavailable
from fs2split.events import authentication, fme_event
from fs2split.events.event_type import to_event_type
from fs2split.events.identity import user_id_from_session_url
from fs2split.events.mapped import unmapped
from fs2split.events.payload import FullStoryEvent, Kind, parse
from fs2split.events.properties import flatten
from fs2split.http_types import Request
from fs2split.instance import Instance
from fs2split.outcome import IN_PROGRESS_RETRY_AFTER_S, Outcome, Reason
from fs2split.stores.dedup import UNAVAILABLE_RETRY_AFTER_S as DEDUP_RETRY_AFTER_S
from fs2split.stores.dedup import Claim, DedupUnavailable


def handle(request: Request, instance: Instance) -> Outcome:
    if instance.settings_error:
        return Outcome(Reason.SETTINGS_INVALID, instance.settings_error)
    if instance.mapping_error:
        # 503, so FullStory redelivers once the mapping is fixed and the function redeployed.
        return Outcome(Reason.MAPPING_INVALID, instance.mapping_error)
    if len(request.body) > instance.settings.max_body_bytes:
        return Outcome(Reason.PAYLOAD_TOO_LARGE, f"the body is larger than {instance.settings.max_body_bytes} bytes")
    try:
        refused = authentication.refusal(request, instance)
    except SecretUnavailable as error:
        return Outcome(Reason.SECRET_UNAVAILABLE, str(error))
    if refused:
        return refused
    parsed = parse(request.body, instance.mapping.streams if instance.mapping else None)
    if isinstance(parsed, Outcome):
        return parsed
    outcome = _guarded(parsed, request.body, instance)
    if parsed.notes:
        return replace(outcome, body={**outcome.body, "notes": list(parsed.notes)})
    return outcome


def _guarded(parsed: FullStoryEvent, body: bytes, instance: Instance) -> Outcome:
    if parsed.name.strip().lower() in instance.settings.loop_guard_events:
        return Outcome(Reason.LOOP_GUARD, f"{parsed.name!r} is written by fs2split itself; not sent back to FME")
    dropped_by = instance.mapping.dropped_by(parsed.name) if instance.mapping else None
    if dropped_by is not None:
        return Outcome(
            Reason.DROPPED_BY_MAPPING,
            f"{parsed.name[:100]!r} matches {dropped_by[:100]!r} in the mapping's drop list; not sent",
            log={"dropped_by": dropped_by},
        )
    if instance.dry_run:
        # Nothing is delivered, so nothing needs remembering: a newcomer may replay a sample.
        with budget(instance.settings.retry_budget_s):
            return _deliver(parsed, instance)
    if instance.settings.delivery == "queue":
        # Checked, not delivered: the drain dedups and delivers (fs2split/queue/), imported only in queue mode.
        from fs2split.queue import enqueue

        # A body without an event time is never a redelivery of another: its key is unique to this request,
        # so the drain still absorbs the queue's own duplicate deliveries of this one message.
        key = parsed.fingerprint if parsed.timed else f"{parsed.fingerprint}:{uuid.uuid4().hex}"
        return enqueue.fullstory(body, key, instance)
    if not parsed.timed:
        # Without an event time, identical bodies are a user repeating an action, not a redelivery.
        with budget(instance.settings.retry_budget_s):
            return _deliver(parsed, instance)
    dedup_key = parsed.fingerprint
    try:
        claim = instance.dedup.claim(dedup_key)
    except DedupUnavailable as error:  # FS2SPLIT_DEDUP_ON_STORE_ERROR=refuse: the sender retries later
        return Outcome(Reason.DEDUP_UNAVAILABLE, str(error), retry_after=DEDUP_RETRY_AFTER_S)
    if claim is Claim.DONE:
        return Outcome(Reason.DUPLICATE, "this webhook was already delivered; nothing sent again")
    if claim is Claim.IN_FLIGHT:
        return Outcome(
            Reason.IN_PROGRESS,
            "this webhook is being delivered by another request; retry later",
            retry_after=IN_PROGRESS_RETRY_AFTER_S,
        )
    outcome = Outcome(Reason.INTERNAL_ERROR, "delivery did not finish")
    try:
        with budget(instance.settings.retry_budget_s):
            outcome = _deliver(parsed, instance)
    finally:
        if outcome.status < 300:
            instance.dedup.done(dedup_key)
        else:
            instance.dedup.release(dedup_key)
    return outcome


def _deliver(event: FullStoryEvent, instance: Instance) -> Outcome:
    prepared = prepare(event, instance)
    if isinstance(prepared, Outcome):
        return prepared
    fme, key_source, log = prepared
    if instance.dry_run:
        return _dry_run(fme, key_source, instance, log)
    try:
        sdk_key = instance.keys.get(SPLIT_API_KEY)
    except SecretUnavailable as error:
        return Outcome(Reason.SECRET_UNAVAILABLE, str(error), log=log)
    if not sdk_key:
        # Configured (so not a dry run) yet empty: a key file beside main.py with nothing in it.
        return Outcome(Reason.SECRET_UNAVAILABLE, "SPLIT_API_KEY is configured but empty", log=log)
    reply = FmeApi(instance.upstream, instance.settings.split_events_url, sdk_key).send([fme])
    return _delivery_outcome(reply, fme, log)


def prepare(event: FullStoryEvent, instance: Instance) -> tuple[dict[str, object], str, dict[str, object]] | Outcome:
    """Map and identify: (the FME event, where its key came from, log fields), or why it is not sent.

    Shared by direct delivery and the queue drain (fs2split/queue/drain.py), which sends in bulk.
    """
    settings = instance.settings
    properties = event.properties
    if event.withheld and instance.mapping is not None:
        named = instance.mapping.names_explicitly
        properties = {**properties, **{k: v for k, v in event.withheld.items() if named(k)}}
    # A configured mapping was imported with the instance; without one, the matcher is never loaded.
    mapped = instance.mapping.apply(event.name, properties) if instance.mapping else unmapped(properties)
    if isinstance(mapped, Outcome):
        return mapped
    if mapped.key is not None:
        # The mapping names the key: no FullStory lookup is needed, or made.
        key, key_source, log = mapped.key, "property", {"lookup": "none"}
    else:
        try:
            identity = _identify(event, instance)
        except SecretUnavailable as error:
            return Outcome(Reason.SECRET_UNAVAILABLE, str(error), log=mapped.log)
        if isinstance(identity, Outcome):
            return replace(identity, log={**mapped.log, **identity.log})
        key, key_source, log = identity
    log.update(mapped.log)
    flattened = flatten(mapped.properties)
    if flattened.trimmed:
        logs.emit(
            logging.WARNING,
            "properties trimmed to fit FME's limits",
            event=event.name[:100],
            trimmed=list(flattened.trimmed[:50]),
            trimmed_count=len(flattened.trimmed),
        )
    fme = fme_event.build(
        event_type=mapped.event_type or to_event_type(event.name, settings.event_type_map),
        traffic_type=mapped.traffic_type or settings.traffic_type,
        key=key,
        timestamp_ms=event.timestamp_ms,
        value=mapped.value if mapped.value_decided else fme_event.default_value(flattened.properties),
        properties=flattened.properties,
    )
    log.update(event_type=fme["eventTypeId"], properties=len(flattened.properties))
    if flattened.trimmed:
        log["properties_trimmed"] = len(flattened.trimmed)
    problem = fme_event.problem(fme)
    if problem:
        return Outcome(Reason.EVENT_INVALID, f"FME would refuse this event: {problem}", log=log)
    return fme, key_source, log


def _identify(event: FullStoryEvent, instance: Instance) -> tuple[str, str, dict[str, object]] | Outcome:
    """(key, where it came from, log fields), or why there is no key."""
    if event.kind is Kind.STREAM:
        if event.uid:
            return event.uid, "uid", {"lookup": "none"}
        return Outcome(Reason.ANONYMOUS_USER, "the Stream names no user_id (the user was never identified); not sent")
    if event.kind is Kind.STREAMS:
        if event.uid:
            return event.uid, "uid", {"lookup": "none"}
        user_id = event.user_id
    else:
        user_id = user_id_from_session_url(event.session_url)
    if not user_id:
        return Outcome(Reason.NO_USER_ID, "the webhook names no FullStory user (no usable sessionUrl); not sent")
    fallback = instance.settings.key_fallback == "fullstory_user_id"
    api_key = instance.keys.get(FULLSTORY_API_KEY)
    if api_key is None:
        if instance.dry_run or fallback:
            return user_id, "fullstory_user_id", {"lookup": "none"}
        return Outcome(
            Reason.FULLSTORY_KEY_MISSING,
            "FULLSTORY_API_KEY is not set, so the uid cannot be resolved; set it or FS2SPLIT_KEY_FALLBACK",
        )
    api = FullStoryApi(instance.upstream, instance.settings.fullstory_api_url, api_key)
    lookup, cached = instance.uids.resolve(api, user_id)
    log: dict[str, object] = {"lookup": "cache" if cached else "api"}
    if lookup.result is Lookup.FOUND and lookup.uid:
        return lookup.uid, "uid", log
    if lookup.result in (Lookup.ANONYMOUS, Lookup.NOT_FOUND):
        if fallback:
            return user_id, "fullstory_user_id", log
        if lookup.result is Lookup.ANONYMOUS:
            return Outcome(Reason.ANONYMOUS_USER, "the FullStory user has no uid (never identified); not sent", log=log)
        return Outcome(Reason.USER_NOT_FOUND, "FullStory does not know this user id; not sent", log=log)
    reply = lookup.reply or Reply(0)
    if lookup.result is Lookup.UNAVAILABLE:
        return Outcome(
            Reason.FULLSTORY_UNAVAILABLE,
            f"FullStory user lookup failed: {reply.describe()}",
            log=log,
            retry_after=reply.retry_after,
        )
    if reply.status == 403:
        return Outcome(
            Reason.FULLSTORY_KEY_FORBIDDEN,
            "FullStory refused the user lookup (403): reading users needs an Admin or Architect API key, "
            "and FULLSTORY_API_KEY is likely a Standard one",
            log=log,
        )
    return Outcome(Reason.FULLSTORY_REJECTED, f"FullStory refused the user lookup: {reply.describe()}", log=log)


def _dry_run(fme: dict[str, object], key_source: str, instance: Instance, log: dict[str, object]) -> Outcome:
    why = "FS2SPLIT_DRY_RUN is set" if instance.settings.force_dry_run else "SPLIT_API_KEY is not set"
    message = f"dry run ({why}): nothing was sent to FME"
    if key_source == "fullstory_user_id":
        message += "; the key is the FullStory user id, not the uid (no FULLSTORY_API_KEY to resolve it)"
    logs.emit(logging.INFO, "dry run: would send to FME", event=fme)
    return Outcome(
        Reason.DRY_RUN,
        message,
        body={"dry_run": True, "key_source": key_source, "events": [fme]},
        log={**log, "events_sent": 0, "key_source": key_source},
    )


def _delivery_outcome(reply: Reply, fme: dict[str, object], log: dict[str, object]) -> Outcome:
    if reply.ok:
        return Outcome(
            Reason.DELIVERED,
            "delivered to FME",
            body={"event_type": fme["eventTypeId"]},
            log={**log, "events_sent": 1},
        )
    log = {**log, "events_sent": 0, "fme_status": reply.status}
    if reply.verdict is Verdict.RETRY_LATER:
        return Outcome(
            Reason.FME_UNAVAILABLE,
            f"FME did not accept the event yet: {reply.describe()}",
            log=log,
            retry_after=reply.retry_after,
        )
    if reply.verdict is Verdict.OUR_SETUP:
        return Outcome(
            Reason.FME_UNAUTHORIZED,
            f"FME refused the request (check SPLIT_API_KEY and SPLIT_EVENTS_URL): {reply.describe()}",
            log=log,
        )
    return Outcome(Reason.FME_REJECTED, f"FME refused the event: {reply.describe()}", log=log)
