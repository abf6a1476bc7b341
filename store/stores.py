"""The stores of one deployment, made the one way every process makes them.

`stores_on` builds them over a Redis client the caller owns (the worker and
the dashboard keep one for their whole life); `open_stores` also connects and
closes, for the short-lived reads of the command line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from domain.relevance import load_relevance
from kernel.redis_client import RedisClient, connect
from kernel.settings import Settings
from store.agents import AgentStore
from store.alerts import AlertStore
from store.contact_reasons import ContactReasonStore
from store.identities import IdentityStore
from store.keys import Keys
from store.negatives import NegativeStore
from store.replays import ReplayLog
from store.self_service import SelfServiceStore
from store.summaries import SummaryState
from store.timeline import TimelineStore


@dataclass(frozen=True)
class Stores:
    redis: RedisClient
    keys: Keys
    timelines: TimelineStore
    identities: IdentityStore
    alerts: AlertStore
    summaries: SummaryState
    contact_reasons: ContactReasonStore
    negatives: NegativeStore
    replays: ReplayLog
    self_service: SelfServiceStore
    agents: AgentStore


def stores_on(redis: RedisClient, settings: Settings) -> Stores:
    keys = Keys(settings.redis_prefix)
    return Stores(
        redis=redis,
        keys=keys,
        # Every process reads the same [relevance] section (CXT_AGENT_CONTEXT): the worker
        # indexes entries by it, the dashboard reads the index, erasure and the export
        # know its keys.
        timelines=TimelineStore(redis, keys, max_entries=settings.timeline_max_entries,
                                max_age_days=settings.timeline_max_age_days,
                                relevance=load_relevance(settings.agent_context_path)),
        identities=IdentityStore(redis, keys),
        alerts=AlertStore(redis, keys, counters_ttl_days=settings.timeline_max_age_days),
        summaries=SummaryState(redis, keys),
        contact_reasons=ContactReasonStore(redis, keys, ttl_days=settings.timeline_max_age_days),
        negatives=NegativeStore(redis, keys, counters_ttl_days=settings.timeline_max_age_days),
        replays=ReplayLog(redis, keys),
        self_service=SelfServiceStore(redis, keys),
        agents=AgentStore(redis, keys, rated_ttl_days=settings.timeline_max_age_days),
    )


def connect_redis(settings: Settings, **options: Any) -> RedisClient:
    """The deployment's Redis, single server or cluster as configured."""
    return connect(settings.redis_url, cluster=settings.redis_cluster,
                   security=settings.redis_security, **options)


@asynccontextmanager
async def open_stores(settings: Settings, **options: Any) -> AsyncIterator[Stores]:
    redis = connect_redis(settings, **options)
    try:
        yield stores_on(redis, settings)
    finally:
        await redis.aclose()
