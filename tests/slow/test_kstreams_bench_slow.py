"""A small run of the Kafka Streams peer in the comparison (bench/compare.py --smoke
--impl kstreams), so that it keeps building and working (figures are not judged).  In the
slow suite: it builds the peer with Maven on first use (bench/kstreams) and starts a stack
of its own, about a minute."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support.helpers import REPO


@pytest.mark.slow
def test_kstreams_peer_runs_and_loses_nothing(tmp_path: Path) -> None:
    # The broker itself needs both, so only a machine that cannot run Kafka lacks them.
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the Kafka Streams peer cannot be built")
    out = tmp_path / "compare.json"
    result = subprocess.run(
        [sys.executable, "bench/compare.py", "--smoke", "--impl", "kstreams", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    figures = orjson.loads(out.read_text())["implementations"]["kstreams"]
    assert figures["status"] == "ok", figures.get("reason")

    throughput = figures["throughput"]
    assert throughput["events"] == 2000 and throughput["events_per_s"] > 0
    assert throughput["timeline_entries"] == 2000 and throughput["dead_lettered"] == {}
    assert throughput["cpu_s_per_10k"] > 0
    latency = figures["latency"]
    assert latency["back"] == latency["events"] == 1000 and latency["drained"]
    assert latency["missing_bench_field"] == 0 and latency["latency_ms"]["p99_ms"] > 0
    for phase in (throughput, latency):
        alerts = phase["alerts"]
        assert alerts["exactly_once"], alerts
        assert alerts["seen"] == alerts["expected"] > 0
    assert figures["stop"]["exit_code"] == 0 and not figures["stop"]["killed"]
    assert figures["peak_rss_bytes"] > 0
