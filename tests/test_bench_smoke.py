"""A small run of the pipeline benchmark, so it keeps working (figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.helpers import REPO


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
