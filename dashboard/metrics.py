"""Prometheus metrics of the dashboard service (the worker has its own endpoint).

Each app gets its own registry, so several apps in one process (tests,
benchmarks) do not collide in the global one.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)


class DashboardMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter("cxt_dashboard_http_requests", "HTTP requests answered, by "
                                "route template, method and status", ["route", "method",
                                                                      "status"], registry=r)
        self.request_seconds = Histogram("cxt_dashboard_http_request_seconds", "Time to answer "
                                         "an HTTP request, by route template", ["route"],
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.ws_clients = Gauge("cxt_dashboard_websocket_clients", "Open websockets, by "
                                "channel (alerts, agent)", ["channel"], registry=r)
        self.pushed = Counter("cxt_dashboard_pushed_messages", "Messages sent on websockets, by "
                              "channel", ["channel"], registry=r)
        self.dropped_clients = Counter("cxt_dashboard_slow_clients_dropped", "Websockets closed "
                                       "because the client did not keep up", registry=r)
        self.feed_records = Counter("cxt_dashboard_feed_records", "Records read from the output "
                                    "topics for the live feeds, by topic", ["topic"], registry=r)
        self.context_seconds = Histogram("cxt_dashboard_agent_context_seconds", "Time to read "
                                         "and rank an agent context (Redis reads included)",
                                         buckets=_LATENCY_BUCKETS, registry=r)
        self.push_lag_seconds = Histogram("cxt_dashboard_contact_push_seconds", "From the "
                                          "contact's timeline entry being published to its "
                                          "context being queued for the agent's websocket",
                                          buckets=_LATENCY_BUCKETS, registry=r)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by route template (not raw path, which
    would give one series per customer id)."""

    def __init__(self, app: ASGIApp, metrics: DashboardMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(time.perf_counter() - started)
