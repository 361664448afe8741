"""The browser recipe (``examples/browser/split-evaluation-listener.js``) run in Node with a recording ``FS``:
what it sends must be what the server side sends, so one FullStory segment covers both."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fs2split.impressions import event as impressions

NODE = shutil.which("node")
RECIPE = Path(__file__).resolve().parents[2] / "examples" / "browser" / "split-evaluation-listener.js"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Loads the recipe as a page would (a plain script defining a global), with FS recording its calls.
HARNESS = """
const [recipe, options, evaluations, withFs] = process.argv.slice(1);
const calls = [];
if (withFs === "yes") globalThis.FS = (...args) => { calls.push(args); };
require(recipe);
const listener = globalThis.createFullStoryImpressionListener(JSON.parse(options));
for (const data of JSON.parse(evaluations)) listener.logImpression(data);
process.stdout.write(JSON.stringify(calls));
"""


def run_recipe(evaluations: list[Any], options: dict[str, Any] | None = None, with_fs: bool = True) -> list[Any]:
    done = subprocess.run(
        [
            NODE or "node",
            "-e",
            HARNESS,
            str(RECIPE),
            json.dumps(options or {}),
            json.dumps(evaluations),
            "yes" if with_fs else "no",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def js_evaluation(**changes: Any) -> dict[str, Any]:
    """``data`` as the FME JavaScript SDK hands it to ``impressionListener.logImpression``."""
    impression = {
        "feature": "new_checkout",
        "keyName": "customer-123",
        "treatment": "on",
        "time": 1668106790992,
        "bucketingKey": None,
        "label": "default rule",
        "changeNumber": 1667920819383,
        **changes,
    }
    return {
        "impression": impression,
        "attributes": {"email": "ada@example.com"},
        "ip": False,
        "hostname": False,
        "sdkLanguageVersion": "javascript-10.22.0",
    }


def server_properties(**changes: Any) -> dict[str, Any]:
    """What fs2split sends for the same evaluation arriving by FME's impressions webhook."""
    item = {
        "key": "customer-123",
        "split": "new_checkout",
        "environmentName": "Production",
        "treatment": "on",
        "time": 1668106790992,
        "bucketingKey": None,
        "label": "default rule",
        "splitVersionNumber": 1667920819383,
        "sdk": "javascript",
        "sdkVersion": "10.22.0",
        **changes,
    }
    impression = impressions.from_webhook(item)
    assert isinstance(impression, impressions.Impression), impression
    return impressions.to_event(impression)["properties"]


def test_given_a_browser_evaluation_then_fs_track_event_gets_exactly_the_server_side_properties() -> None:
    [call] = run_recipe([js_evaluation()], {"environmentName": "Production"})

    assert call == ["trackEvent", {"name": "split_evaluation", "properties": server_properties()}]


def test_given_a_bucketing_key_then_the_browser_sends_it_as_the_server_side_does() -> None:
    [call] = run_recipe([js_evaluation(bucketingKey="account-7")], {"environmentName": "Production"})

    assert call[1]["properties"] == server_properties(bucketingKey="account-7")


def test_given_the_evaluation_attributes_then_the_browser_does_not_send_them() -> None:
    [call] = run_recipe([js_evaluation()])

    assert "ada@example.com" not in json.dumps(call)


def test_given_repeated_evaluations_then_the_browser_sends_each_treatment_once_per_page() -> None:
    evaluations = [js_evaluation()] * 50 + [js_evaluation(treatment="off"), js_evaluation(changeNumber=2)]

    calls = run_recipe(evaluations)

    sent = [
        (c[1]["properties"]["impression"]["treatment"], c[1]["properties"]["impression"]["changeNumber"]) for c in calls
    ]
    assert sent == [("on", 1667920819383), ("off", 1667920819383), ("on", 2)]


@pytest.mark.parametrize("data", [None, {}, {"impression": None}, {"impression": {"feature": "f"}}, "x"])
def test_given_data_that_is_not_an_impression_then_the_listener_neither_throws_nor_tracks(data: Any) -> None:
    assert run_recipe([data]) == []


def test_given_fullstory_is_not_on_the_page_then_the_listener_does_not_throw() -> None:
    assert run_recipe([js_evaluation()], with_fs=False) == []
