"""The one "write these impressions to FullStory" call the drain makes.

Today it runs the direct-mode webhook's writing code (single creates with ``Idempotency-Key``, concurrent, each
impression remembered once FullStory accepted it). The batch-import path of the impressions-volume issue can
replace the body of ``write`` at merge: the drain reads only the outcome's status and counts.
"""

from __future__ import annotations

from fs2split.clients.fullstory_api import FullStoryApi
from fs2split.impressions import route
from fs2split.impressions.event import Impression
from fs2split.instance import Instance
from fs2split.outcome import Outcome


def write(impressions: list[Impression], api_key: str, instance: Instance) -> Outcome:
    """200: every impression is in FullStory (or can never be); 5xx or 409: some are not, try again later."""
    settings = instance.settings
    batch = route._Batch(received=len(impressions), unique=impressions)
    api = FullStoryApi(instance.upstream, settings.fullstory_api_url, api_key)
    results = route._deliver_all(impressions, api, instance.impressions_seen, settings.impressions_concurrency)
    return route._outcome(batch, results, {})
