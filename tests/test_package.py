"""``pip install .`` gives a team the listener: the wheel is built from the repository as a user would build
it, holds the package and nothing else, and works in a fresh virtualenv beside the real ``splitio_client``,
writing impressions to a loopback FullStory. Builds a wheel and a virtualenv (pip reaches the package index,
or its cache), hence the ``e2e`` mark."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fs2split import __version__
from tests.support.clone import fresh_clone
from tests.support.upstream import FakeUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Run inside the fresh virtualenv, outside the repository, so only the installed wheel can be imported.
LISTENER_SCRIPT = """
import json, os, sys, threading
import fs2split
from fs2split import FullStoryImpressionListener
from fs2split.listener import FullStoryImpressionListener as Legacy
from splitio import get_factory

assert Legacy is FullStoryImpressionListener
listener = FullStoryImpressionListener(environment_name="Production")
factory = get_factory("server-side-sdk-key", **json.loads(os.environ["SDK_URLS"]),
                      config={"impressionListener": listener, "streamingEnabled": False, "IPAddressesEnabled": False})
factory.block_until_ready(10)
treatments = [factory.client().get_treatment(user, "new_checkout") for user in ("alice", "bob")]
flushed = listener.flush(10)
done = threading.Event()
factory.destroy(done)
done.wait(5)
print(json.dumps({"file": fs2split.__file__, "version": fs2split.__version__, "treatments": treatments,
                  "flushed": flushed, "stats": listener.stats()}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = fresh_clone(tmp_path_factory.mktemp("clone"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    [built] = dist.glob("fs2split-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    splitio_pin = re.search(r"^splitio_client==\S+", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert splitio_pin
    subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel), splitio_pin.group(0)],
        check=True,
        capture_output=True,
    )
    return home


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        server.add_flag("new_checkout", ["on", "off"], default="off", whitelist={"on": ["alice"]})
        yield server


def test_the_wheel_holds_the_fs2split_package_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}

    assert tops == {"fs2split", f"fs2split-{__version__}.dist-info"}
    assert "fs2split/impressions/listener.py" in names
    assert "fs2split/py.typed" in names


def test_the_wheel_version_is_the_one_in_fs2split_init(wheel: Path) -> None:
    assert wheel.name.startswith(f"fs2split-{__version__}-")


def test_the_packages_dependency_ranges_start_at_the_pins_the_functions_deploy_with() -> None:
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements-aws.txt").read_text(), re.M))
    floors = dict(re.findall(r"^([A-Za-z0-9_.-]+)>=([^,]+),", "\n".join(PYPROJECT["project"]["dependencies"]), re.M))

    assert floors == pins


def test_the_installed_listener_writes_sdk_impressions_to_fullstory_from_a_fresh_virtualenv(
    venv: Path, up: FakeUpstream, tmp_path: Path
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "FULLSTORY_API_KEY": "fs-key-from-the-environment",
        "FULLSTORY_API_URL": up.fullstory_url,
        "SDK_URLS": json.dumps(up.sdk_urls()),
    }
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", LISTENER_SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])

    assert report["file"].startswith(str(venv))
    assert (report["version"], report["treatments"], report["flushed"]) == (__version__, ["on", "off"], True)
    sent = sorted(
        (e["user"]["uid"], e["properties"]["impression"]["treatment"], e["properties"]["environmentName"])
        for e in up.fullstory_events()
    )
    assert sent == [("alice", "on", "Production"), ("bob", "off", "Production")]
    assert {call.headers.get("authorization") for call in up.calls("POST", "/v2/events")} == {
        "Basic fs-key-from-the-environment"
    }


def test_the_gcp_and_aws_extras_add_each_clouds_secret_manager_sdk(wheel: Path) -> None:
    metadata = zipfile.ZipFile(wheel).read(f"fs2split-{__version__}.dist-info/METADATA").decode()
    extras = dict(re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)\S*.*; extra == \"(\w+)\"", metadata, re.M))

    assert (extras.get("google-cloud-secret-manager"), extras.get("boto3")) == ("gcp", "aws")
