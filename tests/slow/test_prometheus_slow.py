"""Slow suite: a real Prometheus (Debian's) scrapes a live worker and evaluates the shipped
alert rules.  With its Redis stopped the worker falls behind and CxtConsumerLagHigh and
CxtRedisErrors fire; stopped itself, CxtWorkerDown fires.  The rules are the shipped
expressions with their `for:` durations and the lag threshold shortened, so the test
takes a minute instead of several (`promtool test rules` covers the real durations)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from cxt.localstack import LocalStack, RedisServer, free_port
from tests.support.helpers import REPO, create_topics, envelope, isolated, produce_events
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.slow

RULES = REPO / "config" / "prometheus" / "cx-timeline.rules.yml"


def _fast_rules(target: Path) -> None:
    rules = RULES.read_text()
    rules = re.sub(r"for: \d+m", "for: 5s", rules)
    rules = rules.replace("cxt_worker_consumer_lag_seconds) > 30",
                          "cxt_worker_consumer_lag_seconds) > 5")
    target.write_text(rules)


def _prometheus(directory: Path, worker_port: int) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: ./dev test-slow installs Debian's package"
    _fast_rules(directory / "rules.yml")
    (directory / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}}
rule_files: [rules.yml]
scrape_configs:
  - job_name: cxt-worker
    static_configs: [{{targets: ["127.0.0.1:{worker_port}"]}}]
""")
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={directory / 'prometheus.yml'}",
         f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        cwd=directory, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _firing(base: str) -> set[str]:
    try:
        alerts = httpx.get(f"{base}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    except (httpx.HTTPError, ValueError, KeyError):
        return set()
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def test_worker_down_and_lag_alerts_fire(stack: LocalStack, tmp_path: Path) -> None:
    redis_server = RedisServer(free_port(), tmp_path / "redis").start()
    metrics_port = free_port()
    settings = isolated(stack.settings, worker_metrics_port=metrics_port,
                        redis_url=redis_server.url)
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(settings, tmp_path).start()
    prometheus, base = _prometheus(tmp_path, metrics_port)
    try:
        asyncio.run(produce_events(settings, [envelope("call", "C-1", call_id="K-0")]))

        def scraped_up() -> bool:
            try:
                reply = httpx.get(f"{base}/api/v1/query", params={"query": "up"}, timeout=5)
                return any(r["value"][1] == "1" for r in reply.json()["data"]["result"])
            except (httpx.HTTPError, ValueError, KeyError):
                return False
        _until(scraped_up, 60, "Prometheus did not scrape the worker")
        time.sleep(8)  # a healthy worker fires nothing
        assert _firing(base) == set(), _firing(base)

        # Redis away: the worker retries the same batch, falls behind, and says so.
        redis_server.stop()
        for n in range(1, 6):
            asyncio.run(produce_events(settings, [envelope("call", "C-1", call_id=f"K-{n}")]))
            time.sleep(1)
        _until(lambda: {"CxtConsumerLagHigh", "CxtRedisErrors"} <= _firing(base), 90,
               "CxtConsumerLagHigh and CxtRedisErrors did not fire")
        assert "CxtWorkerDown" not in _firing(base)

        worker.stop()
        _until(lambda: {"CxtWorkerDown", "CxtNoWorker"} <= _firing(base), 60,
               "CxtWorkerDown did not fire")
    finally:
        worker.stop()
        prometheus.terminate()
        prometheus.wait(timeout=30)
        redis_server.stop()
