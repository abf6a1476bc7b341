"""A small run of the routing data-dip benchmark, so it keeps working (figures are not
judged).  In the slow suite: it starts a stack of its own (about 20 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.helpers import REPO


@pytest.mark.slow
def test_routing_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "routing.json"
    result = subprocess.run(
        [sys.executable, "bench/routing_bench.py", "--quick", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "GET /api/routing ms" in result.stdout and "p99" in result.stdout
    assert "summary: routing p99" in result.stdout
    figures = orjson.loads(out.read_text())
    dips = figures["routing"]
    assert dips["answered"] == dips["requests"] == 150
    assert dips["errors"] == {} and dips["wrong"] == {}
    assert dips["p99_ms"] > 0 and dips["unknown_callers"] > 0
    assert set(dips["by_kind"]) == {"customer_id", "email", "phone", "unknown"}
    assert figures["agents"] == 120 and figures["seed"]["open_alerts"] > 0
    assert figures["parameters"]["quick"] is True
