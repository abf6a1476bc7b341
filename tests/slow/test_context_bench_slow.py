"""A small run of the agent-context benchmark, so it keeps working (figures are not judged).
In the slow suite: it starts a stack of its own (about 16 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.helpers import REPO


@pytest.mark.slow
def test_context_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "context.json"
    result = subprocess.run(
        [sys.executable, "bench/context_bench.py", "--quick", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "context read (HTTP) ms" in result.stdout and "p99" in result.stdout
    assert "summary: context read p99" in result.stdout and "push p99" in result.stdout
    figures = orjson.loads(out.read_text())
    reads, push = figures["context"], figures["push"]
    assert reads["answered"] == reads["requests"] == 50
    assert reads["errors"] == {} and reads["short_replies"] == 0
    assert reads["min_counts_total"] >= 49 and reads["p99_ms"] > 0
    assert push["received"] == push["pushes"] == 5 and push["missing"] == 0
    assert push["p99_ms"] > 0 and push["unexpected"] == 0
    assert figures["seed"]["open_alerts"] > 0
    assert figures["machine"]["cpu_count"] >= 1
    assert figures["parameters"]["quick"] is True
