"""The benchmark (``./dev bench``, BENCHMARKS.md) in its quick mode: it must keep running and keep reporting
every figure. Timing thresholds are not checked here (``./dev bench --check`` does that), only that the
report is complete and every figure is a finite number."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import emulators

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent

# Every figure BENCHMARKS.md reports; the ones with a target are marked True.
EXPECTED = {
    "cold_start.baseline_ms": False,
    "cold_start.main_ms": False,
    "cold_start.import_ms": False,
    "cold_start.ratio": True,
    "cold_start.main_from_source_ms": False,
    "cold_start.eager_cloud_sdks": True,
    "listener.get_treatment_us": False,
    "listener.with_listener_us": False,
    "listener.ratio": True,
    "listener.worst_ratio": False,
    "listener.sent": False,
    "round_trips.per_event": True,
    "round_trips.limit": False,
    "round_trips.concurrent_per_event": False,
    "latency.bare_median_ms": False,
    "latency.bare_p95_ms": False,
    "latency.median_ms": False,
    "latency.p95_ms": False,
    "latency.ratio": True,
    "latency.info_median_ms": False,
    "latency.slow_median_ms": True,
    "latency.bare_wait_median_ms": False,
    "latency.slow_p95_ms": False,
    "impressions.small_seconds": False,
    "impressions.small_calls": False,
    "queue.fme_calls_per_event": True,
    "queue.lookups_per_user": True,
    "queue.webhook_p50_0ms": False,
    "queue.webhook_p50_50ms": False,
    "queue.webhook_50_vs_0": True,
    "queue.direct_vs_queue_50ms": True,
    "queue.drain_10k_s": True,
    "impressions.seconds": True,
    "impressions.calls": True,
    "impressions.large_seconds": False,
    "impressions.large_calls": False,
    "impressions.large_gzip_mb": False,
    "impressions.worker_peak_mb": False,
    "memory.worker_peak_mb": True,
    "memory.instance_peak_mb": True,
    "memory.worker_before_mb": False,
    "memory.arbiter_peak_mb": False,
    "emf.line_us": False,
    "emf.line_with_block_us": False,
    "emf.added_us": True,
    "dedup.import_dynamodb_ms": False,
    "dedup.import_firestore_rest_ms": False,
    "dedup.import_firestore_sdk_ms": False,
    "dedup.firestore_rest_vs_sdk_ratio": True,
    **{
        f"load.{scenario}.{count}": (count in ("lost", "duplicated") and scenario != "hangs") or count == "lost"
        for scenario in ("clean", "http_500", "http_429", "resets", "hangs")
        for count in ("sent", "delivered_once", "duplicated", "lost")
    },
    "load.refused_body_worker_peak_mb": True,
}
# Round trips against an emulator: reported only when the emulator is installed (the bench says so on stderr).
for _backend, _skip in (("dynamodb", emulators.moto_skip_reason()), ("firestore", emulators.firestore_skip_reason())):
    if _skip is None:
        for _figure in ("p50_ms", "p95_ms", "duplicate_p50_ms", "duplicate_p95_ms"):
            EXPECTED[f"dedup.{_backend}_{_figure}"] = False


def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    metrics = {m["key"]: m for m in report["metrics"]}
    assert set(metrics) == set(EXPECTED)
    for key, has_target in EXPECTED.items():
        metric = metrics[key]
        assert isinstance(metric["value"], int | float), key
        assert math.isfinite(metric["value"]), key
        assert metric["value"] >= 0, key
        assert (metric["bound"] is not None) is has_target, key
        assert isinstance(metric["ok"], bool) is has_target, key
        assert metric["label"] in run.stdout, key  # the printed table has a row for it
    assert report["quick"] is True
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["python"].startswith("3.")
    # The counts behind the figures: every event and impression really went through.
    assert metrics["round_trips.per_event"]["value"] >= metrics["round_trips.limit"]["value"] > 1
    assert metrics["listener.sent"]["value"] > 0
    assert metrics["load.clean.sent"]["value"] == metrics["load.clean.delivered_once"]["value"] > 0


@pytest.mark.parametrize(("value", "check", "code"), [(2.0, True, 1), (2.0, False, 0), (1.0, True, 0)])
def test_check_exits_non_zero_only_when_a_target_is_missed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: float, check: bool, code: int
) -> None:
    import bench.__main__ as runner
    from bench.common import Metric

    figures = [Metric("x.ratio", "x ratio", value, "×", "<=", 1.0), Metric("x.ms", "x time", 5.0, " ms")]
    monkeypatch.setattr(runner, "measure", lambda plan: figures)

    assert runner.main(["--quick", *(["--check"] if check else [])]) == code
    printed = capsys.readouterr().out
    assert "| x ratio |" in printed
    assert ("MISSED" in printed) is (value > 1.0)
