"""The worker's Prometheus /metrics, scraped from a real worker on the real broker and Redis."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
import uuid

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cxt.localstack import LocalStack, free_port
from streams.metrics import WorkerMetrics
from tests.support.helpers import (
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
)
from tests.support.processes import WorkerProcess
from usecases.timeline import read_timeline


def _scrape(port: int) -> dict[str, tuple[str, list[Sample]]] | None:
    """Metric family name -> (HELP text, samples); None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return {f.name: (f.documentation, f.samples) for f in text_string_to_metric_families(text)}


def _value(families: dict[str, tuple[str, list[Sample]]] | None, family: str, sample: str,
           **labels: str) -> float | None:
    if not families or family not in families:
        return None
    for s in families[family][1]:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def test_metrics_count_accepted_rejected_alerts_and_lag(stack: LocalStack, tmp_path) -> None:
    port = free_port()
    settings = isolated(stack.settings, worker_metrics_port=port)
    asyncio.run(create_topics(settings))
    cid = f"C-{uuid.uuid4().hex[:10]}"
    events = [envelope("call", cid, intent="billing") for _ in range(3)]
    events += [envelope("chat", cid) for _ in range(2)]
    events.append(envelope("survey", cid, score=1, comment="nobody called back"))
    # Sent before the worker starts: it reads from the earliest offset once it has joined.
    asyncio.run(produce_events(settings, events))
    asyncio.run(produce(settings, settings.topics.call, [(cid.encode(), b"{not json")]))
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        def counted() -> dict | None:
            families = _scrape(port)
            done = _value(families, "cxt_worker_records_consumed",
                          "cxt_worker_records_consumed_total", agent="interactions")
            return families if done == len(events) + 1 else None

        families = asyncio.run(eventually(counted, timeout=90, interval=0.5))
        assert families, f"the worker never counted {len(events) + 1} records:\n{worker.log()}"
        accepted = "cxt_worker_events_accepted"
        by_channel = {ch: _value(families, accepted, f"{accepted}_total", channel=ch)
                      for ch in ("call", "chat", "survey", "email", "social")}
        assert by_channel == {"call": 3, "chat": 2, "survey": 1, "email": 0, "social": 0}
        assert _value(families, "cxt_worker_events_rejected", "cxt_worker_events_rejected_total",
                      reason="invalid_json") == 1
        assert _value(families, "cxt_worker_alert_events", "cxt_worker_alert_events_total",
                      event="raised", kind="bottom_2_box") == 1
        # The third call about billing: a repeat contact.
        assert _value(families, "cxt_worker_alert_events", "cxt_worker_alert_events_total",
                      event="raised", kind="negative_interaction") == 1
        latency = "cxt_worker_alert_latency_seconds"
        assert _value(families, latency, f"{latency}_count", kind="bottom_2_box") == 1
        assert 0 < _value(families, latency, f"{latency}_sum",  # type: ignore[operator]
                          kind="bottom_2_box") < 10
        batches = _value(families, "cxt_worker_batch_size", "cxt_worker_batch_size_count",
                         agent="interactions")
        assert batches and batches >= 1
        assert _value(families, "cxt_worker_batch_duration_seconds",
                      "cxt_worker_batch_duration_seconds_count", agent="interactions") == batches
        # The default process metrics come along, and every metric of ours says what it counts.
        assert _value(families, "process_resident_memory_bytes", "process_resident_memory_bytes")
        assert "process_cpu_seconds" in families
        for name, (help_text, _) in families.items():
            if name.startswith("cxt_worker_"):
                assert len(help_text) > 20, name

        # Lag: one series per assigned partition, all 0 once the commits have caught up.
        def caught_up() -> list[Sample] | None:
            found = _scrape(port)
            series = found["cxt_worker_consumer_lag"][1] if found and \
                "cxt_worker_consumer_lag" in found else []
            call = [s for s in series if s.labels["topic"] == settings.topics.call]
            return series if len(call) == settings.topics.partitions and \
                all(s.value == 0 for s in series) else None

        lag = asyncio.run(eventually(caught_up, timeout=30, interval=0.5))
        assert lag, f"lag never reached 0: {_scrape(port)}\n{worker.log()}"
        assert {s.labels["topic"] for s in lag} >= set(settings.topics.inbound.values())
        # ... and in seconds: 0 for every partition with nothing left.
        seconds = _scrape(port)["cxt_worker_consumer_lag_seconds"][1]
        assert {s.labels["topic"] for s in seconds} >= set(settings.topics.inbound.values())
        assert all(s.value == 0 for s in seconds)
        worker.assert_alive()
    finally:
        worker.stop()


def test_a_busy_metrics_port_is_logged_and_the_worker_keeps_processing(
        stack: LocalStack, tmp_path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = isolated(stack.settings, worker_metrics_port=port)
        asyncio.run(create_topics(settings))
        event = envelope("call", f"C-{uuid.uuid4().hex[:10]}")
        asyncio.run(produce_events(settings, [event]))
        worker = WorkerProcess(settings, tmp_path).start()
        try:
            async def stored() -> list:
                return (await read_timeline(settings, event["customer_id"]))["events"]

            assert asyncio.run(eventually(stored, timeout=90, interval=0.5)), worker.log()

            async def port_errors() -> list[str]:
                log = worker.log_path.read_text(errors="replace")
                return [line for line in log.splitlines() if "CXT_WORKER_METRICS_PORT" in line]

            # The inbound consumer may store the event before the app's tasks have run.
            errors = asyncio.run(eventually(port_errors, timeout=30, interval=0.5))
            worker.assert_alive()
            assert errors and len(errors) == 1 and str(port) in errors[0], worker.log()
        finally:
            worker.stop()


def test_lag_series_of_partitions_no_longer_assigned_disappear() -> None:
    metrics = WorkerMetrics()
    metrics.set_lag({("cx.call.v1", 0): 5, ("cx.call.v1", 1): 2},
                    {("cx.call.v1", 0): 12.5, ("cx.call.v1", 1): 3.0})
    metrics.set_lag({("cx.call.v1", 1): 0}, {("cx.call.v1", 1): 0.0})
    get = metrics.registry.get_sample_value
    assert get("cxt_worker_consumer_lag", {"topic": "cx.call.v1", "partition": "0"}) is None
    assert get("cxt_worker_consumer_lag", {"topic": "cx.call.v1", "partition": "1"}) == 0
    assert get("cxt_worker_consumer_lag_seconds",
               {"topic": "cx.call.v1", "partition": "0"}) is None
    assert get("cxt_worker_consumer_lag_seconds",
               {"topic": "cx.call.v1", "partition": "1"}) == 0
    # Several apps in one process: each has its own registry, no duplicate-name error.
    assert WorkerMetrics().registry is not metrics.registry
