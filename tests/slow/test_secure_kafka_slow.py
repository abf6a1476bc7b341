"""Slow suite: the product end to end against a real broker whose client listener is
SASL_SSL with SCRAM-SHA-512 (tests/support/secure.py; the connection and refusal tests are
in tests/slow/test_kafka_security_slow.py)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import redis

from cxt.localstack import LocalStack, free_port
from kernel.settings import ApiToken
from tests.support.helpers import (
    REPO,
    envelope,
    eventually,
    produce_events,
    read_topic,
    settings_env,
)
from tests.support.processes import DashboardProcess, SummaryProcess, WorkerProcess, run_cxt
from tests.support.secure import Certs, SecureListeners, running_secure_broker, scram_settings

pytestmark = pytest.mark.slow


def test_the_product_runs_end_to_end_over_sasl_ssl(stack: LocalStack, tmp_path: Path) -> None:
    """`cxt topics create`, the worker, the summary feed, the dashboard and the example
    subscriber, all with SCRAM-SHA-512 over TLS: an event becomes a timeline entry in
    Redis and on cx.timeline.v1, a summary, and a line the subscriber prints."""
    with running_secure_broker(stack, tmp_path / "secure") as (certs, listeners, _):
        _run_end_to_end(stack, certs, listeners, tmp_path)


def _run_end_to_end(stack: LocalStack, certs: Certs, listeners: SecureListeners,
                    tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    settings = replace(scram_settings(stack, certs, listeners),
                       api_tokens=(ApiToken("advisor", "a-1", token),))
    created = run_cxt(settings, "topics", "create")
    assert created.returncode == 0, created.stderr
    worker = WorkerProcess(settings, tmp_path).start()
    summaries = SummaryProcess(settings, tmp_path).start()
    dashboard = DashboardProcess(replace(settings, dashboard_port=free_port()), tmp_path).start()
    subscriber = subprocess.Popen(
        [sys.executable, "-m", "consumers.example_subscriber", "--group", "g-secure",
         "--from-beginning"], cwd=REPO, env=settings_env(settings),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        customer = f"C-{uuid.uuid4().hex[:8]}"
        asyncio.run(produce_events(settings, [envelope("call", customer, call_id="K-1")]))
        key = f"{settings.redis_prefix}:{{{customer}}}:tl"
        assert asyncio.run(eventually(lambda: client.zcard(key) == 1, timeout=60)), worker.log()
        entries = asyncio.run(read_topic(settings, settings.topics.timeline,
                                         until=lambda ms: any(m.key == customer.encode()
                                                              for m in ms)))
        assert any(m.key == customer.encode() for m in entries)
        summary = asyncio.run(read_topic(settings, settings.topics.customer_summary,
                                         until=lambda ms: any(m.key == customer.encode()
                                                              for m in ms), timeout=60))
        assert any(m.key == customer.encode() for m in summary), summaries.log()
        dashboard.wait_ready(token)
        line = _first_line(subscriber, timeout=60)
        assert orjson.loads(line)["customer_id"] == customer
    finally:
        subscriber.terminate()
        subscriber.communicate(timeout=30)
        dashboard.stop()
        summaries.stop()
        worker.stop()
        client.close()


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            return line
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
    raise AssertionError("the subscriber printed nothing")
