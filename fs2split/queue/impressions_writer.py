"""The one "write these impressions to FullStory" call the drain makes.

It runs the direct-mode webhook's own step, `fs2split.impressions.write.write_impressions`: single creates with an
``Idempotency-Key``, or batch import jobs above ``FS2SPLIT_IMPRESSIONS_BATCH_THRESHOLD`` (an accepted job counts
as delivered), each impression remembered once FullStory holds it. The drain reads only the outcome's status and
counts; the caller sets the budget.
"""

from __future__ import annotations

from fs2split.impressions import route
from fs2split.impressions.event import Impression
from fs2split.impressions.write import write_impressions
from fs2split.instance import Instance
from fs2split.outcome import Outcome


def write(impressions: list[Impression], api_key: str, instance: Instance) -> Outcome:
    """200: every impression is in FullStory (or can never be); 5xx or 503 in_progress: try again later."""
    settings = instance.settings
    batch = route.Batch(received=len(impressions), unique=impressions)
    written = write_impressions(impressions, instance.upstream, api_key, instance.impressions_seen, settings)
    return route.outcome_of(batch, written, {})
