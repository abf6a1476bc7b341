"""Shared fixtures: one private Kafka broker + Redis server per test session.

The stack lives in a pytest tmp directory on free ports, so tests never touch
a developer's `cxt up` stack or each other's runs.  Worker fixtures build on
`stack` (its `.settings` already points at the private services).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cxt.localstack import LocalStack, free_port
from kernel.settings import ApiToken, Settings
from tests.support.helpers import create_topics, isolated
from tests.support.processes import DashboardProcess, WorkerProcess

TESTS = Path(__file__).resolve().parent
SERVICE_FIXTURES = {"stack", "redis_client", "live_dashboard", "live", "http"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The layout's rules (tests/README.md): a test under tests/unit/ uses no Kafka or
    Redis fixture; a test under tests/slow/ is marked slow."""
    for item in items:
        try:
            where = item.path.relative_to(TESTS).parts[0]
        except ValueError:
            continue
        services = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if where == "unit" and services:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {sorted(services)}: "
                                    "move it to tests/integration/")
        if where == "slow" and item.get_closest_marker("slow") is None:
            raise pytest.UsageError(f"{item.nodeid} is under tests/slow/ but not marked slow")


def _test_settings() -> Settings:
    # Built from the defaults, not the environment, so a developer's
    # KAFKA_BOOTSTRAP_SERVERS or CXT_REDIS_PREFIX cannot leak into the tests;
    # only the jar cache location is taken from the environment (CI may move it).
    return Settings(cache_dir=Settings.from_env().cache_dir)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Running broker + Redis; use `.settings`, `.broker`, `.redis`."""
    local = LocalStack(_test_settings(), tmp_path_factory.mktemp("stack"))
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def redis_client(stack: LocalStack) -> Iterator[redis.Redis]:
    """A sync client on the session's Redis, emptied first so tests start clean."""
    client = redis.Redis.from_url(stack.settings.redis_url, decode_responses=True)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@dataclass(frozen=True)
class LiveDashboard:
    """A worker and a dashboard on their own topics and Redis prefix, with tokens by name:
    advisor (adv-ana, an actor), stranger (an advisor who is not an actor), agent (A-007),
    other_agent (A-008), service, customer (C-self-service)."""

    settings: Settings
    tokens: dict[str, str]
    worker: WorkerProcess
    dashboard: DashboardProcess

    @property
    def url(self) -> str:
        return self.settings.dashboard_url

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


HOLDERS = {"advisor": ("advisor", "adv-ana"), "stranger": ("advisor", "adv-nobody"),
           "agent": ("agent", "A-007"), "other_agent": ("agent", "A-008"),
           "service": ("service", "test-suite"),
           "customer": ("customer", "C-self-service")}


@pytest.fixture(scope="module")
def live_dashboard(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[LiveDashboard]:
    with running_dashboard(stack, tmp_path_factory) as live:
        yield live


@contextmanager
def running_dashboard(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory,
                      holders: dict[str, tuple[str, str]] = HOLDERS, **changes: Any
                      ) -> Iterator[LiveDashboard]:
    """`live_dashboard`'s worker and dashboard; `changes` to their settings."""
    tokens = {name: secrets.token_urlsafe(24) for name in holders}
    settings = isolated(stack.settings, dashboard_port=free_port(), **changes, api_tokens=tuple(
        ApiToken(role, subject, tokens[name]) for name, (role, subject) in holders.items()))
    asyncio.run(create_topics(settings))
    logs = tmp_path_factory.mktemp("dashboard")
    worker = WorkerProcess(settings, logs).start()
    dashboard = DashboardProcess(settings, logs).start()
    try:
        dashboard.wait_ready(tokens["service"])
        yield LiveDashboard(settings, tokens, worker, dashboard)
    finally:
        dashboard.stop()
        worker.stop()


@pytest.fixture(scope="module")
def live(live_dashboard: LiveDashboard) -> LiveDashboard:
    """The module's live dashboard, under its short name."""
    return live_dashboard


@pytest.fixture(scope="module")
def http(live: LiveDashboard) -> Iterator[httpx.Client]:
    """An HTTP client on the live dashboard, for the module (hypothesis tests need that)."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client
