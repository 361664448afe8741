"""The impressions page (docs/impressions.md) stays true to the code: its outcomes table lists exactly the reasons
``POST /split/impressions`` can answer with, each with the status the code gives it."""

from __future__ import annotations

import re
from pathlib import Path

from fs2split.impressions import route as impressions_route
from fs2split.outcome import STATUS, Reason

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "impressions.md").read_text()
# The router answers these for any route: a wrong method, and a bug.
ROUTER_REASONS = {Reason.METHOD_NOT_ALLOWED, Reason.INTERNAL_ERROR}


def test_given_the_routes_code_then_the_outcomes_table_lists_each_reason_it_returns_with_its_status() -> None:
    source = Path(impressions_route.__file__).read_text()
    returned = {Reason[name] for name in re.findall(r"Reason\.([A-Z_]+)", source)} | ROUTER_REASONS

    table = {reason: int(status) for status, reason in re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", DOC, re.M)}

    assert table == {reason.value: STATUS[reason] for reason in returned}


def test_given_the_doc_then_every_page_it_links_to_exists() -> None:
    for target in re.findall(r"\]\(([^)#:]+)\)", DOC):
        assert (ROOT / "docs" / target).resolve().is_file(), target
