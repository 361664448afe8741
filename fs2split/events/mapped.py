"""What the mapping decided for one event, and the core's defaults where no mapping is configured.

Apart from `fs2split.events.mapping` so that a function without a mapping never imports the matcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fs2split.events.mapping import Rule


@dataclass(frozen=True)
class Mapped:
    """The mapping applied to one event: what the route builds the FME event from."""

    rule: Rule | None
    event_type: str | None  # None: the core's naming
    traffic_type: str | None  # None: SPLIT_TRAFFIC_TYPE
    key: str | None  # None: resolve the FullStory user as the core does
    # False without a mapping: the route reads split.value* from the sent properties, as the core does.
    value_decided: bool
    value: int | float | None
    properties: dict[str, Any]  # still nested, for properties.flatten
    log: dict[str, Any] = field(default_factory=dict)


def unmapped(properties: dict[str, Any]) -> Mapped:
    """Without a mapping: everything as the core does it (the naming rule, SPLIT_TRAFFIC_TYPE, the uid)."""
    return Mapped(None, None, None, None, value_decided=False, value=None, properties=properties)
