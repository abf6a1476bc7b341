"""Small runs of the pipeline benchmarks, so they keep working (speed is not judged here).

The comparison (bench/compare.py --smoke --use-running) runs once against the
session's stack on isolated topics and Redis prefix, for ours and whichever of
the other implementations can run here; each implementation's figures are then
checked for sanity: every event back, every expected alert exactly once, a clean
SIGTERM.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxt.localstack import LocalStack
from tests.support.helpers import REPO, isolated, settings_env

# name -> (script, Python module it needs); ours is always there.
PEERS = {"ceiling": ("bench/impl_ceiling.py", "aiokafka"),
         "quix": ("bench/impl_quix.py", "quixstreams")}


def _unavailable(name: str) -> str | None:
    script, module = PEERS[name]
    if not (REPO / script).exists():
        return f"{script} does not exist"
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    return None


def test_pipeline_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "bench/pipeline_bench.py", "--events", "3000", "--rate", "1000",
         "--customers", "300", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = orjson.loads(out.read_text())
    assert figures["events"] == 3000
    assert figures["events_per_s"] > 0
    assert figures["alerts_missing"] == 0 and figures["alert_duplicates"] == 0
    assert figures["alerts_seen"] == figures["alerts_expected"] > 0
    assert figures["dead_lettered"] == {}


@pytest.fixture(scope="module")
def comparison(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One smoke comparison of every implementation that can run here."""
    settings = isolated(stack.settings)
    impls = ["ours", *(name for name in PEERS if _unavailable(name) is None)]
    out = tmp_path_factory.mktemp("compare") / "compare.json"
    result = subprocess.run(
        [sys.executable, "bench/compare.py", "--smoke", "--use-running",
         "--impl", ",".join(impls), "--out", str(out)],
        cwd=REPO, env=settings_env(settings), capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "throughput, events/s" in result.stdout and "ratios are to ours" in result.stdout
    return orjson.loads(out.read_text())


@pytest.mark.parametrize("name", ["ours", *PEERS])
def test_comparison_smoke_figures(comparison: dict[str, Any], name: str) -> None:
    if name != "ours" and (reason := _unavailable(name)):
        pytest.skip(f"{name}: {reason}")
    figures = comparison["implementations"][name]
    assert figures["status"] == "ok", figures.get("reason")
    params = comparison["parameters"]
    assert params["smoke"] and params["use_running"] and params["events"] == 2000

    throughput = figures["throughput"]
    assert throughput["events"] == 2000
    assert throughput["timeline_entries"] == 2000 and throughput["dead_lettered"] == {}
    assert throughput["events_per_s"] > 0 and throughput["cpu_s_per_10k"] > 0

    paced = figures["latency"]
    assert paced["back"] == paced["events"] == 1000
    assert 0 < paced["latency_ms"]["p50_ms"] <= paced["latency_ms"]["p99_ms"]
    assert paced["missing_bench_field"] == 0
    for phase in (throughput, paced):
        alerts = phase["alerts"]
        assert alerts["exactly_once"], alerts
        assert alerts["seen"] == alerts["expected"] > 0
    assert paced["alert_latency_ms"]["p99_ms"] > 0

    assert figures["peak_rss_bytes"] > 10 * 1024 * 1024
    assert figures["stop"]["exit_code"] == 0 and not figures["stop"]["killed"]
    assert comparison["machine"]["cpu_count"] >= 1


def test_comparison_rejects_an_unknown_implementation() -> None:
    result = subprocess.run([sys.executable, "bench/compare.py", "--impl", "ours,nope"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown implementation 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_comparison_reports_a_dying_worker_and_a_missing_module(stack: LocalStack,
                                                                  tmp_path: Path) -> None:
    """A worker that exits fails its implementation with its log; one whose imports
    fail is skipped; neither is a traceback of the benchmark."""
    out = tmp_path / "compare.json"
    dies = f"{sys.executable} -c \"raise SystemExit('boom: no config')\""
    nomod = f"{sys.executable} -c 'import no_such_module_for_the_bench'"
    result = subprocess.run(
        [sys.executable, "bench/compare.py", "--smoke", "--use-running",
         "--impl", f"dies={dies},nomod={nomod}", "--out", str(out)],
        cwd=REPO, env=settings_env(isolated(stack.settings)), capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "dies: FAILED: the worker exited with status 1" in result.stderr
    assert "boom: no config" in result.stderr  # the worker's log tail
    figures = orjson.loads(out.read_text())["implementations"]
    assert figures["dies"]["status"] == "failed" and "boom" in figures["dies"]["log_tail"]
    assert figures["nomod"]["status"] == "skipped"
    assert "no_such_module_for_the_bench" in figures["nomod"]["reason"]
