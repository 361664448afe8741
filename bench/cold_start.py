"""Cold start: what the first answer costs beyond the platform's own ``functions_framework`` and ``requests``.

The subject imports ``main`` and answers one dry-run FullStory webhook through ``lambda_handler``: what a
new instance pays before its first answer. Deferring work from import to the first request does not
improve this figure, on purpose; loading only what that request needs does.

Each sample is a fresh interpreter that times its own import with ``perf_counter`` (so interpreter
start-up and shutdown, equal for both, are not in it). Samples alternate between the two imports so
a noisy neighbour hurts both alike; the median of each is compared.

Bytecode: both sides import compiled modules, as a deployment that ships bytecode would. The samples
import a copy of ``main.py`` and ``fs2split`` compiled by ``compileall`` in a scratch directory, with
``PYTHONDONTWRITEBYTECODE`` set, so neither the repo's ``__pycache__`` (stale, or absent when the
developer's shell sets that variable) decides the result nor is anything written to the repo.
site-packages keep the bytecode pip wrote. Separately, ``import main`` is timed from a copy without
any bytecode: what every cold start pays on a read-only file system (Lambda's /var/task) when the
package ships no ``.pyc``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, Metric, clean_env, median

BASELINE = "import functions_framework, requests"
IMPORT_ONLY = "import main"
# A Lambda Function URL event carrying the v1 custom-event fixture; no keys are set, so it is a dry run.
_EVENT = {
    "version": "2.0",
    "rawPath": "/fullstory",
    "headers": {"content-type": "application/json"},
    "requestContext": {"http": {"method": "POST", "path": "/fullstory"}},
    "body": (ROOT / "tests" / "events" / "fullstory-custom-event.json").read_text(),
    "isBase64Encoded": False,
}
SUBJECT = f"import main; answer = main.lambda_handler({_EVENT!r}, None); assert answer['statusCode'] == 200, answer"
# Imported only when a secret reference or a mapping file asks for them: never at cold start.
LAZY = ("google.cloud.secretmanager", "boto3", "botocore", "yaml", "splitio")
_TIMER = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"


def _import_seconds(code: str, env: dict[str, str], cwd: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _TIMER.format(code=code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _copy(scratch: Path, name: str, *, compiled: bool) -> Path:
    """main.py and fs2split in ``scratch/name``, compiled or without any bytecode."""
    app = scratch / name
    app.mkdir()
    shutil.copy2(ROOT / "main.py", app / "main.py")
    shutil.copytree(ROOT / "fs2split", app / "fs2split", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(app)], check=True, env=clean_env())
    return app


def _eager_modules() -> list[str]:
    probe = f"import sys, json; {SUBJECT}; print(json.dumps([m for m in {list(LAZY)!r} if m in sys.modules]))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=clean_env(), capture_output=True, text=True, check=True
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def run(repetitions: int) -> list[Metric]:
    # PYTHONDONTWRITEBYTECODE: the from-source copy must stay without bytecode, sample after sample.
    env = clean_env(PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        compiled = _copy(Path(scratch), "compiled", compiled=True)
        source = _copy(Path(scratch), "source", compiled=False)
        # One untimed run each warms the page cache.
        for code, where in ((BASELINE, compiled), (SUBJECT, compiled), (IMPORT_ONLY, compiled), (SUBJECT, source)):
            _import_seconds(code, env, where)
        baseline: list[float] = []
        subject: list[float] = []
        import_only: list[float] = []
        uncompiled: list[float] = []
        for _ in range(repetitions):
            baseline.append(_import_seconds(BASELINE, env, compiled))
            subject.append(_import_seconds(SUBJECT, env, compiled))
            import_only.append(_import_seconds(IMPORT_ONLY, env, compiled))
            uncompiled.append(_import_seconds(SUBJECT, env, source))
    base_ms, main_ms, import_ms, source_ms = (
        median(samples) * 1000 for samples in (baseline, subject, import_only, uncompiled)
    )
    eager = _eager_modules()
    return [
        Metric("cold_start.baseline_ms", f"`{BASELINE}`", base_ms, " ms", note=f"median of {repetitions}"),
        Metric(
            "cold_start.main_ms",
            "`import main` + one dry-run webhook through `lambda_handler`",
            main_ms,
            " ms",
            note=f"median of {repetitions}",
        ),
        Metric("cold_start.import_ms", f"`{IMPORT_ONLY}` alone", import_ms, " ms", note=f"median of {repetitions}"),
        Metric("cold_start.ratio", "cold start to the first answer / baseline", main_ms / base_ms, "×", "<=", 1.15),
        Metric(
            "cold_start.main_from_source_ms",
            "first answer, fs2split compiled from source (no .pyc shipped, read-only disk)",
            source_ms,
            " ms",
            note=f"median of {repetitions}; {source_ms / base_ms:.2f}× baseline",
        ),
        Metric(
            "cold_start.eager_cloud_sdks",
            "cloud SDKs in sys.modules after the first answer",
            float(len(eager)),
            "",
            "<=",
            0,
            note=", ".join(eager) if eager else f"none of {', '.join(LAZY)}",
        ),
    ]
