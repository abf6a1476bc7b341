"""Timelines and alerts on a Redis Cluster of three masters started by the test.

Every key of a customer carries the customer id as its hash tag, so a
customer's keys share one slot; the worker groups its script calls by slot.
A worker with CXT_REDIS_CLUSTER=true stores timelines (by customer_id and by
identity), raises one alert per bottom-2-box survey, and `cxt timeline` reads
them back, while the keys spread over all three masters.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from redis.cluster import RedisCluster

from cxt.localstack import LocalStack, ensure_redis_server, free_port
from domain.alerts import alert_id_for
from kernel.settings import ApiToken, Settings, SettingsError
from tests.support.helpers import (
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
    read_topic,
)
from tests.support.processes import DashboardProcess, SummaryProcess, WorkerProcess, run_cxt

MASTERS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """Three Redis masters on free ports, joined into one cluster; their ports."""
    binary = ensure_redis_server()
    root = tmp_path_factory.mktemp("redis-cluster")
    ports = [_bus_safe_port() for _ in range(MASTERS)]
    procs = []
    try:
        for port in ports:
            data = root / str(port)
            data.mkdir()
            procs.append(subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no",
                 "--dir", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        for port in ports:
            _until(lambda p=port: _ping(p), 20, f"redis on port {port}")
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stdout + created.stderr
        _until(lambda: all(_cluster_ok(p) for p in ports), 30, "cluster state ok")
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def _bus_safe_port() -> int:
    # Each node also listens on port + 10000 (the cluster bus), which must exist.
    while (port := free_port()) > 55_000:
        pass
    return port


def _ping(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    info = subprocess.run(["redis-cli", "-p", str(port), "cluster", "info"],
                          capture_output=True, text=True, timeout=10).stdout
    return "cluster_state:ok" in info


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def test_timelines_and_alerts_work_unchanged_on_a_cluster(stack: LocalStack, cluster: list[int],
                                                          tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    settings = replace(isolated(stack.settings, dashboard_port=free_port(),
                                api_tokens=(ApiToken("advisor", "adv-ana", token),)),
                       redis_url=f"redis://127.0.0.1:{cluster[0]}/0", redis_cluster=True)
    asyncio.run(create_topics(settings))
    customers = [{"customer_id": f"C-{i:03d}", "name": f"Customer {i}",
                  "identifiers": {"phones": [f"+4420700{i:05d}"]}} for i in range(40)]
    asyncio.run(produce(settings, settings.topics.customers,
                        [(c["customer_id"].encode(), orjson.dumps(c)) for c in customers]))
    events = []
    for i, c in enumerate(customers):
        cid = c["customer_id"]
        events.append(envelope("call", cid, event_id=f"call-{i}",
                               occurred_at=f"2026-11-22T10:{i % 60:02d}:00Z"))
        events.append(envelope("chat", None, event_id=f"chat-{i}",
                               identity={"phone": c["identifiers"]["phones"][0]},
                               occurred_at=f"2026-11-22T11:{i % 60:02d}:00Z"))
        events.append(envelope("survey", cid, event_id=f"survey-{i}", score=1 + i % 5,
                               contact_id=f"call-{i}",
                               occurred_at=f"2026-11-22T12:{i % 60:02d}:00Z"))
    worker = WorkerProcess(settings, tmp_path).start()
    dashboard = DashboardProcess(settings, tmp_path).start()
    summaries = SummaryProcess(settings, tmp_path).start()
    client = RedisCluster(host="127.0.0.1", port=cluster[0])
    prefix = settings.redis_prefix
    try:
        # Customer records first, so the identity-only chats find their customer.
        assert asyncio.run(eventually(lambda: len(list(client.scan_iter(
            f"{prefix}:*:profile", count=1000))) == len(customers), timeout=90)), worker.log()
        asyncio.run(produce_events(settings, events))

        def all_stored() -> bool:
            return all(client.zcard(f"{prefix}:{{{c['customer_id']}}}:tl") == 3
                       for c in customers)
        assert asyncio.run(eventually(all_stored, timeout=90)), worker.log()
        worker.assert_alive()

        for i, c in enumerate(customers):
            ids = [m.decode() for m in client.zrange(f"{prefix}:{{{c['customer_id']}}}:tl", 0, -1)]
            assert ids == [f"call-{i}", f"chat-{i}", f"survey-{i}"]
        bottom = {alert_id_for(f"survey-{i}") for i in range(len(customers)) if 1 + i % 5 <= 2}
        def alerts() -> set[str]:
            return {k.decode().split("{")[1].split("}")[0]
                    for k in client.scan_iter(f"{prefix}:*:alert", count=1000)}
        # The entries are written a moment before the alerts of the same batch.
        assert asyncio.run(eventually(lambda: alerts() == bottom, timeout=10)), alerts()
        # Contacts are counted as contact reasons there too (the worker adds the hour
        # counters after the contact memory's call, since they live in other slots).
        def contacts_in(hour: str) -> int:
            counters = client.hgetall(f"{prefix}:{{k:20261122}}:{hour}:n")
            return sum(int(v) for k, v in counters.items() if k.startswith(b"c|"))
        assert (contacts_in("10"), contacts_in("11")) == (len(customers), len(customers))
        # The keys are spread over the masters, not piled on one.
        per_node = [redis.Redis(port=p).dbsize() for p in cluster]
        assert all(n > 0 for n in per_node), per_node

        shown = run_cxt(settings, "timeline", "C-007", "--json")
        assert shown.returncode == 0, shown.stderr
        assert [e["event_id"] for e in orjson.loads(shown.stdout)["events"]] == \
            ["survey-7", "chat-7", "call-7"]

        # The dashboard's API reads the same from the cluster.
        dashboard.wait_ready(token)
        auth = {"Authorization": f"Bearer {token}"}
        base = settings.dashboard_url
        timeline = httpx.get(f"{base}/api/customers/C-007/timeline", headers=auth, timeout=10)
        assert timeline.status_code == 200, timeline.text
        assert [e["event_id"] for e in timeline.json()["events"]] == \
            ["survey-7", "chat-7", "call-7"]
        listed = httpx.get(f"{base}/api/alerts", headers=auth, params={"limit": 100},
                           timeout=10)
        assert listed.status_code == 200, listed.text
        assert {a["alert_id"] for a in listed.json()["alerts"]} == bottom

        # The summary feed keeps its state on the cluster too.
        def summary_of(ms: list) -> dict | None:
            mine = [orjson.loads(m.value) for m in ms if m.key == b"C-007" and m.value]
            return next((s for s in reversed(mine) if s["contacts_30d"]["total"] == 2), None)
        records = asyncio.run(read_topic(settings, settings.topics.customer_summary,
                                         until=lambda ms: summary_of(ms) is not None,
                                         timeout=60))
        summary = summary_of(records)
        assert summary is not None, summaries.log()
        assert summary["last_survey"]["event_id"] == "survey-7"
    finally:
        summaries.stop()
        dashboard.stop()
        worker.stop()
        client.close()


@pytest.mark.parametrize(("raw", "expected"), [("", False), ("true", True), ("1", True),
                                                ("no", False), ("OFF", False)])
def test_the_cluster_switch_reads_true_or_false(raw: str, expected: bool) -> None:
    assert Settings.from_env({"CXT_REDIS_CLUSTER": raw}).redis_cluster is expected


def test_a_bad_cluster_switch_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="CXT_REDIS_CLUSTER='maybe'"):
        Settings.from_env({"CXT_REDIS_CLUSTER": "maybe"})
