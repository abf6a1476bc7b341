"""What the dashboard's routes share: Redis stores, a Kafka producer, the
rules, the tokens, the metrics and the live hub; opened and closed with the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from dashboard.auth import TokenBook
from dashboard.metrics import DashboardMetrics
from dashboard.prompts import AgentConfig, load_agent_config
from domain.rules import Rules, load_rules
from kernel.errors import ConfigError
from kernel.kafka import make_producer, start_producer
from kernel.redis_client import RedisClient
from kernel.settings import Settings
from kernel.topics import ensure_topics
from store.alerts import AlertStore
from store.identities import IdentityStore
from store.stores import connect_redis, stores_on
from store.timeline import TimelineStore


@dataclass
class Services:
    settings: Settings
    redis: RedisClient
    timelines: TimelineStore
    identities: IdentityStore
    alerts: AlertStore
    producer: AIOKafkaProducer
    rules: Rules
    agent_config: AgentConfig
    tokens: TokenBook
    metrics: DashboardMetrics


def check_config(settings: Settings) -> tuple[Rules, AgentConfig, TokenBook]:
    """Everything that can be wrong in configuration, found before any connection."""
    tokens = TokenBook(settings.api_tokens, settings.api_tokens_file)
    if not len(tokens):
        raise DashboardConfigError(
            "no API tokens are configured, so nobody could use the dashboard; set "
            "CXT_API_TOKENS or CXT_API_TOKENS_FILE (role:subject:token lines; "
            "`cxt tokens new ROLE SUBJECT` makes one)")
    return load_rules(settings.alert_rules_path), load_agent_config(
        settings.agent_context_path), tokens


class DashboardConfigError(ConfigError):
    pass


@asynccontextmanager
async def open_services(settings: Settings, metrics: DashboardMetrics
                        ) -> AsyncIterator[Services]:
    rules, agent_config, tokens = check_config(settings)
    await ensure_topics(settings)
    stores = stores_on(connect_redis(settings, socket_timeout=5, socket_connect_timeout=3),
                       settings)
    redis = stores.redis
    producer = await start_producer(make_producer(settings))
    try:
        yield Services(
            settings=settings,
            redis=redis,
            timelines=stores.timelines,
            identities=stores.identities,
            alerts=stores.alerts,
            producer=producer,
            rules=rules,
            agent_config=agent_config,
            tokens=tokens,
            metrics=metrics,
        )
    finally:
        await producer.stop()
        await redis.aclose()
