"""The browser recipe in a real browser: headless Chromium (Debian's ``chromium``, driven by ``playwright-core``)
loads a page from loopback with the official FullStory snippet as ``@fullstory/browser`` injects it, the real
FME JavaScript SDK (``@splitsoftware/splitio``'s browser factory, localhost mode, bundled by esbuild) and the
recipe in both published forms. FullStory's script request is held open, so every ``FS`` call stays in the
snippet's queue, which is what these tests read (``browser/drive.mjs`` runs the pages, ``browser/page.mjs``
evaluates). What reached the queue must be what the server side sends for the same impressions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fs2split.impressions import event as impressions

ROOT = Path(__file__).resolve().parents[2]
PAGES = Path(__file__).resolve().parent / "browser"
NODE_MODULES = ROOT / "node_modules"
NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium")
NEEDED_PACKAGES = ("playwright-core", "esbuild", "@splitsoftware/splitio", "@fullstory/browser")
KEY = "customer-123"
# What page.mjs evaluates: new_checkout x3, getTreatments(new_checkout, banner), banner with config, then
# new_checkout x2 after its treatment changed from "on" to "off".
TREATMENTS = ["on", "on", "on", "on", "blue", "blue", "off", "off"]


def _missing() -> str | None:
    if CHROMIUM is None:
        return "Chromium is not installed: ./dev test installs Debian's chromium when it runs as root with apt-get"
    if NODE is None:
        return "node is not installed"
    absent = [name for name in NEEDED_PACKAGES if not (NODE_MODULES / name / "package.json").is_file()]
    return f"npm packages not installed ({', '.join(absent)}): run npm ci" if absent else None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test pages, the classic recipe and the bundled page script, served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("site")
    for name in ("classic.html", "module.html"):
        shutil.copy(PAGES / name, root / name)
    shutil.copy(ROOT / "examples" / "browser" / "split-evaluation-listener.js", root)
    subprocess.run(
        [
            str(NODE_MODULES / ".bin" / "esbuild"),
            str(PAGES / "page.mjs"),
            "--bundle",
            "--format=iife",
            "--platform=browser",
            f"--outfile={root / 'page.js'}",
            "--log-level=warning",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(site: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every page run at once (one browser start): what each evaluated, handed the listener and queued."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    done = subprocess.run(
        [NODE or "node", str(PAGES / "drive.mjs"), CHROMIUM or "chromium", site, str(profile)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"the browser run failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def track_events(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [args for op, args in run["queue"] if op == "trackEvent"]


def server_side_properties(data: dict[str, Any]) -> dict[str, Any]:
    """What fs2split sends for the same impression arriving by FME's impressions webhook."""
    given = data["impression"]
    sdk, _, version = data["sdkLanguageVersion"].partition("-")
    impression = impressions.from_webhook(
        {
            "key": given["keyName"],
            "split": given["feature"],
            "treatment": given["treatment"],
            "label": given.get("label"),
            "splitVersionNumber": given.get("changeNumber"),
            "time": given.get("time"),
            "bucketingKey": given.get("bucketingKey"),
            "environmentName": "Production",
            "sdk": sdk,
            "sdkVersion": version,
        }
    )
    assert isinstance(impression, impressions.Impression), impression
    return impressions.to_event(impression)["properties"]


def expected_events(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One split_evaluation per distinct impression the SDK handed over (key, flag, treatment, version)."""
    first: dict[tuple[Any, ...], dict[str, Any]] = {}
    for data in run["seen"]:
        i = data["impression"]
        first.setdefault((i["keyName"], i["feature"], i["treatment"], i.get("changeNumber")), data)
    return [{"name": "split_evaluation", "properties": server_side_properties(data)} for data in first.values()]


@pytest.mark.parametrize("form", ["classic", "module"])
def test_given_each_form_then_fullstory_queues_one_split_evaluation_per_distinct_impression_as_the_server_does(
    browser: dict[str, Any], form: str
) -> None:
    run = browser["runs"][form]

    assert track_events(run) == expected_events(run)
    assert [e["properties"]["impression"]["treatment"] for e in track_events(run)] == ["on", "blue", "off"]


@pytest.mark.parametrize("form", ["classic", "module"])
def test_given_each_form_then_fullstory_identifies_the_user_with_the_key_the_sdk_evaluated(
    browser: dict[str, Any], form: str
) -> None:
    run = browser["runs"][form]

    assert ["setIdentity", {"uid": KEY}] in run["queue"]
    assert {data["impression"]["keyName"] for data in run["seen"]} == {KEY}


def test_given_repeated_evaluations_then_the_sdk_hands_over_every_one_and_fullstory_gets_each_once(
    browser: dict[str, Any],
) -> None:
    run = browser["runs"]["module"]

    assert (run["treatments"], len(run["seen"]), len(track_events(run))) == (TREATMENTS, 8, 3)


def test_given_once_page_then_a_reload_sends_the_impressions_again(browser: dict[str, Any]) -> None:
    reloaded = browser["runs"]["classic_reloaded"]

    assert track_events(reloaded) == expected_events(reloaded) != []


def test_given_once_session_then_a_reload_sends_nothing_already_sent_in_this_tab(browser: dict[str, Any]) -> None:
    first, reloaded = browser["runs"]["session"], browser["runs"]["session_reloaded"]

    assert len(track_events(first)) == 3
    assert (len(reloaded["seen"]), track_events(reloaded)) == (8, [])
    assert ["setIdentity", {"uid": KEY}] in reloaded["queue"]


def test_given_once_session_then_another_tab_sends_its_own(browser: dict[str, Any]) -> None:
    other = browser["runs"]["session_other_tab"]

    assert track_events(other) == expected_events(other) != []


def test_given_a_throwing_fs_then_evaluations_keep_their_treatments_and_the_sdk_sees_no_listener_failure(
    browser: dict[str, Any],
) -> None:
    run = browser["runs"]["throwing_fs"]

    assert run["treatments"] == TREATMENTS
    # The SDK logs "[ERROR] ... Impression listener logImpression method threw" when a listener throws.
    assert [line for line in run["console"] if "[ERROR]" in line or line.startswith("pageerror")] == []


def test_given_fullstory_is_blocked_then_evaluations_work_and_the_snippet_drops_every_call(
    browser: dict[str, Any],
) -> None:
    run = browser["runs"]["blocked"]

    assert (run["treatments"], run["queue"], len(run["seen"])) == (TREATMENTS, [], 8)


def test_given_the_official_snippet_then_it_asked_fullstorys_edge_for_fs_js_and_the_test_held_it(
    browser: dict[str, Any],
) -> None:
    held_runs = [name for name in browser["runs"] if name != "blocked"]

    assert browser["scriptRequests"] == ["https://edge.fullstory.com/s/fs.js?org=o-1A2B3C-na1"] * len(held_runs)
