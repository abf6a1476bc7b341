"""Shared fixtures: one private Kafka broker + Redis server per test session.

The stack lives in a pytest tmp directory on free ports, so tests never touch
a developer's `cxt up` stack or each other's runs.  Worker fixtures build on
`stack` (its `.settings` already points at the private services).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from cxt.localstack import LocalStack
from cxt.settings import Settings


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
