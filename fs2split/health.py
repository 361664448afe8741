"""``GET /healthz``: the version and what is configured. Says whether a key is set, never its value,
and never fetches one."""

from __future__ import annotations

from fs2split import __version__
from fs2split.config.keys import (
    FULLSTORY_API_KEY,
    FULLSTORY_STREAM_TOKEN,
    FULLSTORY_WEBHOOK_SECRET,
    FULLSTORY_WEBHOOK_SECRET_PREVIOUS,
    SPLIT_API_KEY,
    SPLIT_IMPRESSIONS_TOKEN,
)
from fs2split.http_types import Request
from fs2split.instance import Instance
from fs2split.outcome import Outcome, Reason


def handle(request: Request, instance: Instance) -> Outcome:
    keys, settings = instance.keys, instance.settings
    body = {
        "service": "fs2split",
        "version": __version__,
        # direct: delivered inside the webhook; queue: enqueued, delivered by the drain (docs/queue.md).
        "delivery": settings.delivery,
        "integrations": {
            "fullstory_to_fme": {
                "mode": "dry_run" if instance.dry_run else "live",
                "fme_key": keys.configured(SPLIT_API_KEY),
                "fullstory_lookup": keys.configured(FULLSTORY_API_KEY),
                "signature_required": keys.configured(FULLSTORY_WEBHOOK_SECRET),
                "previous_secret": keys.configured(FULLSTORY_WEBHOOK_SECRET_PREVIOUS),
                "stream_token_required": keys.configured(FULLSTORY_STREAM_TOKEN),
                "traffic_type": settings.traffic_type,
                "mapping": instance.mapping.summary() if instance.mapping else None,
            },
            "fme_to_fullstory": {
                "mode": "dry_run" if settings.force_dry_run or instance.keyless else "live",
                "configured": keys.configured(FULLSTORY_API_KEY),
                "token_required": keys.configured(SPLIT_IMPRESSIONS_TOKEN),
            },
        },
    }
    if instance.settings_error:
        return Outcome(Reason.SETTINGS_INVALID, instance.settings_error, body=body)
    if instance.mapping_error:
        return Outcome(Reason.MAPPING_INVALID, instance.mapping_error, body=body)
    if instance.keyless or settings.force_dry_run:
        return Outcome(Reason.HEALTHY, f"ok; {_DRY_RUN_NOTE[instance.keyless]}", body={**body, "sends": "nothing"})
    return Outcome(Reason.HEALTHY, "ok", body=body)


_DRY_RUN_NOTE = {
    True: "no key is set, so this function sends nothing anywhere (a dry run): set SPLIT_API_KEY and FULLSTORY_API_KEY",
    False: "FS2SPLIT_DRY_RUN is set, so this function sends nothing anywhere",
}
