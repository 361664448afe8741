"""Cold start: what ``import main`` costs beyond the platform's own ``functions_framework`` and ``requests``.

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
SUBJECT = "import main"
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
    probe = f"import sys, json, main; print(json.dumps([m for m in {list(LAZY)!r} if m in sys.modules]))"
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
        for code, where in ((BASELINE, compiled), (SUBJECT, compiled), (SUBJECT, source)):
            _import_seconds(code, env, where)
        baseline: list[float] = []
        subject: list[float] = []
        uncompiled: list[float] = []
        for _ in range(repetitions):
            baseline.append(_import_seconds(BASELINE, env, compiled))
            subject.append(_import_seconds(SUBJECT, env, compiled))
            uncompiled.append(_import_seconds(SUBJECT, env, source))
    base_ms, main_ms, source_ms = (median(samples) * 1000 for samples in (baseline, subject, uncompiled))
    eager = _eager_modules()
    return [
        Metric("cold_start.baseline_ms", f"`{BASELINE}`", base_ms, " ms", note=f"median of {repetitions}"),
        Metric("cold_start.main_ms", f"`{SUBJECT}`", main_ms, " ms", note=f"median of {repetitions}"),
        Metric("cold_start.ratio", "cold start: `import main` / baseline", main_ms / base_ms, "×", "<=", 1.25),
        Metric(
            "cold_start.main_from_source_ms",
            "`import main`, fs2split compiled from source (no .pyc shipped, read-only disk)",
            source_ms,
            " ms",
            note=f"median of {repetitions}; {source_ms / base_ms:.2f}× baseline",
        ),
        Metric(
            "cold_start.eager_cloud_sdks",
            "cloud SDKs in sys.modules after `import main`",
            float(len(eager)),
            "",
            "<=",
            0,
            note=", ".join(eager) if eager else f"none of {', '.join(LAZY)}",
        ),
    ]
