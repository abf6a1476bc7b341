"""Prometheus metrics of a stream worker, served on `/metrics` (CXT_WORKER_METRICS_PORT).

One `WorkerMetrics` per app, each with its own registry (not prometheus_client's
global one), so tests and benchmarks can run several apps in one process.
Everything is recorded once per batch from counts the batch runner has already
made: the hot path never pays a metric call per event.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping

import prometheus_client as prom

from kernel.settings import CHANNELS

log = logging.getLogger("cxt.worker")

AGENTS: tuple[str, ...] = ("interactions", "customers", "alert-actions")
# Prometheus on another host (or outside a container) has to reach the endpoint,
# and it serves only counts, no customer data, so all interfaces (prometheus_client's
# own default); restrict it with a firewall or the container's port mapping.
BIND_ADDRESS = "0.0.0.0"
# The alert target is well under a second; the upper buckets show how far a
# backlog pushes it past that.
ALERT_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)

TopicPartition = tuple[str, int]


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        # What the global registry would give: CPU, memory, open files, GC, Python version.
        prom.ProcessCollector(registry=self.registry)
        prom.PlatformCollector(registry=self.registry)
        prom.GCCollector(registry=self.registry)
        r = self.registry
        self.consumed = prom.Counter(
            "cxt_worker_records_consumed", "Kafka records taken by each agent and fully "
            "processed (stored, results published, then acknowledged)", ["agent"], registry=r)
        self.accepted = prom.Counter(
            "cxt_worker_events_accepted", "Timeline entries published on the timeline topic, "
            "by channel (late-linked entries published again count again)", ["channel"],
            registry=r)
        self.rejected = prom.Counter(
            "cxt_worker_events_rejected", "Records sent to the dead-letter topic, by reason",
            ["reason"], registry=r)
        self.alert_events = prom.Counter(
            "cxt_worker_alert_events", "Alert events published on the alerts topic, by event "
            "(raised, acknowledged, callback_recorded, resolved, escalated, updated) and kind "
            "(bottom_2_box, negative_interaction)", ["event", "kind"], registry=r)
        self.alert_latency = prom.Histogram(
            "cxt_worker_alert_latency_seconds", "Time from the record that raised an alert "
            "(a bottom-2-box survey, or a signalled interaction) reaching Kafka to the alert "
            "being raised (the alert's latency_ms), by kind", ["kind"],
            buckets=ALERT_LATENCY_BUCKETS, registry=r)
        self.batch_seconds = prom.Histogram(
            "cxt_worker_batch_duration_seconds", "Time to process one batch: validate, store, "
            "publish and wait for Kafka to confirm, retries included", ["agent"],
            buckets=BATCH_SECONDS_BUCKETS, registry=r)
        self.batch_size = prom.Histogram(
            "cxt_worker_batch_size", "Records in each batch an agent took (at most "
            "CXT_BATCH_SIZE)", ["agent"],
            buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.lag = prom.Gauge(
            "cxt_worker_consumer_lag", "Records in a partition assigned to this worker that it "
            "has not committed yet (log end offset minus committed offset)",
            ["topic", "partition"], registry=r)
        self.lag_seconds = prom.Gauge(
            "cxt_worker_consumer_lag_seconds", "How far behind a partition assigned to this "
            "worker is in time: 0 when nothing is left, else the age of the newest record "
            "it processed there (errs late, never early)", ["topic", "partition"], registry=r)
        self.failures = prom.Counter(
            "cxt_worker_failures", "Attempts that failed and are being retried, by what "
            "(Redis write, Kafka publish, escalation check) and error", ["what", "error"],
            registry=r)
        # Series that exist from the start read 0 instead of missing, so rate() and
        # dashboards work before the first event of each kind.
        for agent in AGENTS:
            self.consumed.labels(agent)
            self.batch_seconds.labels(agent)
            self.batch_size.labels(agent)
        for channel in CHANNELS:
            self.accepted.labels(channel)
        self._lag_series: set[TopicPartition] = set()
        self._seconds_series: set[TopicPartition] = set()

    def serve(self, port: int) -> bool:
        """Start the /metrics endpoint in a thread; False (logged) when the port is unusable."""
        try:
            prom.start_http_server(port, addr=BIND_ADDRESS, registry=self.registry)
        except OSError as exc:
            # Metrics must never stop the pipeline: say so once and keep processing.
            log.error("metrics endpoint not started: cannot listen on %s:%d (%s); set "
                      "CXT_WORKER_METRICS_PORT to a free port, or 0 for none; processing "
                      "continues", BIND_ADDRESS, port, exc.strerror or exc)
            return False
        log.info("metrics on http://%s:%d/metrics", BIND_ADDRESS, port)
        return True

    def batch(self, agent: str, records: int, seconds: float, accepted: Mapping[str, int],
              rejected: Mapping[str, int], alerts: Iterable[dict]) -> None:
        """One processed batch: its counts by label, one call per label."""
        self.consumed.labels(agent).inc(records)
        self.batch_size.labels(agent).observe(records)
        self.batch_seconds.labels(agent).observe(seconds)
        for channel, n in accepted.items():
            self.accepted.labels(channel).inc(n)
        for reason, n in rejected.items():
            self.rejected.labels(reason).inc(n)
        self.alerts(alerts)

    def alerts(self, alerts: Iterable[dict]) -> None:
        events: Counter[tuple[str, str]] = Counter()
        for alert in alerts:
            kind = alert.get("kind") or "bottom_2_box"
            events[alert["event"], kind] += 1
            if alert["event"] == "raised":
                self.alert_latency.labels(kind).observe(alert["latency_ms"] / 1000)
        for (event, kind), n in events.items():
            self.alert_events.labels(event, kind).inc(n)

    def set_lag(self, lag: Mapping[TopicPartition, int],
                seconds: Mapping[TopicPartition, float] | None = None) -> None:
        """The lag of every partition assigned now, in records and in seconds where known;
        the others' series disappear."""
        seconds = seconds or {}
        for topic, partition in self._lag_series - lag.keys():
            # Gone to another worker (scale-out, rebalance): its lag is theirs to report.
            self.lag.remove(topic, str(partition))
        for tp in self._seconds_series - seconds.keys():
            self.lag_seconds.remove(tp[0], str(tp[1]))
        for (topic, partition), value in lag.items():
            self.lag.labels(topic, str(partition)).set(value)
        for (topic, partition), age in seconds.items():
            self.lag_seconds.labels(topic, str(partition)).set(age)
        self._lag_series = set(lag)
        self._seconds_series = set(seconds)

    def failure(self, what: str, exc: BaseException) -> None:
        self.failures.labels(what, type(exc).__name__).inc()

