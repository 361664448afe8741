"""The browser recipe (``examples/browser/split-evaluation-listener.js`` and its ES module twin ``.mjs``) run in
Node with a recording ``FS``: what it sends must be what the server side sends, so one FullStory segment covers
both. The real browser, SDK and FullStory snippet are in ``test_impressions_browser_e2e.py``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fs2split.impressions import event as impressions

NODE = shutil.which("node")
RECIPES = Path(__file__).resolve().parents[2] / "examples" / "browser"
CLASSIC = RECIPES / "split-evaluation-listener.js"
MODULE = RECIPES / "split-evaluation-listener.mjs"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Loads the recipe as a page would: the classic script defines a global, the ES module is imported. FS records
# its calls; "session" gives the page a sessionStorage that starts with what an earlier page left in it, and
# "blocked" one that throws as a browser blocking storage does.
HARNESS = """
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
const [recipe, options, evaluations, withFs, storage, stored] = process.argv.slice(1);
const calls = [];
if (withFs === "yes") globalThis.FS = (...args) => { calls.push(args); };
if (withFs === "throws") globalThis.FS = () => { throw new Error("FullStory failed"); };
const items = new Map(Object.entries(JSON.parse(stored)));
const store = {
  getItem: (k) => (items.has(k) ? items.get(k) : null),
  setItem: (k, v) => { items.set(k, String(v)); },
  removeItem: (k) => { items.delete(k); },
};
if (storage === "session") globalThis.sessionStorage = store;
if (storage === "blocked") {
  Object.defineProperty(globalThis, "sessionStorage", { get() { throw new Error("SecurityError"); } });
}
const create = recipe.endsWith(".mjs")
  ? (await import(pathToFileURL(recipe).href)).createFullStoryImpressionListener
  : (createRequire(import.meta.url)(recipe), globalThis.createFullStoryImpressionListener);
const listener = create(JSON.parse(options));
for (const data of JSON.parse(evaluations)) listener.logImpression(data);
process.stdout.write(JSON.stringify({ calls, stored: Object.fromEntries(items) }));
"""


def run_page(
    evaluations: list[Any],
    options: dict[str, Any] | None = None,
    *,
    with_fs: bool | str = True,
    recipe: Path = CLASSIC,
    storage: str = "none",
    stored: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One page load: what ``FS`` was called with and what sessionStorage holds afterwards."""
    done = subprocess.run(
        [
            NODE or "node",
            "--input-type=module",
            "-e",
            HARNESS,
            str(recipe),
            json.dumps(options or {}),
            json.dumps(evaluations),
            with_fs if isinstance(with_fs, str) else "yes" if with_fs else "no",
            storage,
            json.dumps(stored or {}),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def run_recipe(evaluations: list[Any], options: dict[str, Any] | None = None, with_fs: bool = True) -> list[Any]:
    return run_page(evaluations, options, with_fs=with_fs)["calls"]


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


@pytest.mark.parametrize("recipe", [CLASSIC, MODULE], ids=["classic", "module"])
def test_given_either_published_form_then_fs_gets_the_server_side_properties(recipe: Path) -> None:
    [call] = run_page([js_evaluation()], {"environmentName": "Production"}, recipe=recipe)["calls"]

    assert call == ["trackEvent", {"name": "split_evaluation", "properties": server_properties()}]


def test_given_once_session_then_an_impression_sent_before_a_reload_is_not_sent_again() -> None:
    first = run_page([js_evaluation()], {"once": "session"}, storage="session")
    evaluations = [js_evaluation(), js_evaluation(treatment="off")]
    reloaded = run_page(evaluations, {"once": "session"}, storage="session", stored=first["stored"])

    assert len(first["calls"]) == 1
    assert [c[1]["properties"]["impression"]["treatment"] for c in reloaded["calls"]] == ["off"]


def test_given_once_page_then_a_reload_sends_the_impression_again_and_stores_nothing() -> None:
    first = run_page([js_evaluation()], storage="session")
    reloaded = run_page([js_evaluation()], storage="session", stored=first["stored"])

    assert (len(first["calls"]), len(reloaded["calls"]), first["stored"]) == (1, 1, {})


def test_given_once_session_where_storage_is_blocked_then_each_impression_is_sent_once_per_page() -> None:
    calls = run_page([js_evaluation()] * 3, {"once": "session"}, storage="blocked")["calls"]

    assert len(calls) == 1


def test_given_once_session_then_a_throwing_fs_leaves_the_impression_unsent_for_a_later_try() -> None:
    page = run_page([js_evaluation()], {"once": "session"}, with_fs="throws", storage="session")

    assert page["stored"] == {}


def test_given_the_committed_recipe_files_then_they_are_the_build_of_the_one_source() -> None:
    done = subprocess.run(
        [NODE or "node", str(RECIPES / "build.mjs"), "--check"], capture_output=True, text=True, timeout=30
    )

    assert done.returncode == 0, done.stderr
