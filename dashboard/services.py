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
from dashboard.ratelimit import TokenBuckets
from domain.identity import NeverMatch
from domain.routing import RoutingConfig, load_routing_config
from domain.rules import Rules, load_rules
from kernel.errors import ConfigError
from kernel.kafka import make_producer, start_producer
from kernel.redis_client import RedisClient
from kernel.settings import Settings
from kernel.topics import ensure_topics
from store.agents import AgentCache
from store.alerts import AlertStore
from store.identities import IdentityStore
from store.self_service import SelfServiceStore
from store.stores import Stores, connect_redis, stores_on
from store.timeline import TimelineStore
from usecases.routing import Router


@dataclass
class Services:
    settings: Settings
    redis: RedisClient
    timelines: TimelineStore
    identities: IdentityStore
    alerts: AlertStore
    self_service: SelfServiceStore  # the customer's own notes and preferences (reads)
    producer: AIOKafkaProducer
    rules: Rules
    agent_config: AgentConfig
    tokens: TokenBook
    metrics: DashboardMetrics
    # GET /api/routing: the stores, the agents (parsed, refreshed every second), the file.
    router: Router
    # Every store over `redis`, for the routes that need more than the ones above (/api/me).
    stores: Stores
    # The self-service writes' rate limit, per token.
    write_buckets: TokenBuckets


def check_config(settings: Settings
                 ) -> tuple[Rules, AgentConfig, TokenBook, RoutingConfig]:
    """Everything that can be wrong in configuration, found before any connection."""
    tokens = TokenBook(settings.api_tokens, settings.api_tokens_file)
    if not len(tokens):
        raise DashboardConfigError(
            "no API tokens are configured, so nobody could use the dashboard; set "
            "CXT_API_TOKENS or CXT_API_TOKENS_FILE (role:subject:token lines; "
            "`cxt tokens new ROLE SUBJECT` makes one)")
    return load_rules(settings.alert_rules_path), load_agent_config(
        settings.agent_context_path), tokens, load_routing_config(settings.routing_rules_path)


class DashboardConfigError(ConfigError):
    pass


@asynccontextmanager
async def open_services(settings: Settings, metrics: DashboardMetrics
                        ) -> AsyncIterator[Services]:
    rules, agent_config, tokens, routing = check_config(settings)
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
            self_service=stores.self_service,
            producer=producer,
            rules=rules,
            agent_config=agent_config,
            tokens=tokens,
            metrics=metrics,
            router=Router(stores.identities, stores.agents, AgentCache(stores.agents), routing,
                          NeverMatch(settings.identity_never_match)),
            stores=stores,
            write_buckets=TokenBuckets(settings.self_service_write_rate),
        )
    finally:
        await producer.stop()
        await redis.aclose()
