"""Kafka + Redis on this machine, without Docker: for `cxt up`, the tests and the benchmark."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from cxt.localstack._process import die_with_parent
from cxt.localstack.errors import PrerequisiteError, ServiceStartError
from cxt.localstack.kafka import KafkaBroker, ensure_java, ensure_kafka_libs
from cxt.localstack.ports import free_port, port_in_use
from cxt.localstack.redis import RedisServer, ensure_redis_server
from kernel.settings import Settings

__all__ = [
    "KafkaBroker",
    "LocalStack",
    "PrerequisiteError",
    "RedisServer",
    "ServiceStartError",
    "die_with_parent",
    "ensure_java",
    "ensure_kafka_libs",
    "ensure_redis_server",
    "free_port",
    "port_in_use",
]


class LocalStack:
    """A broker and a Redis server under one data directory, started and stopped together.

    `start()` returns a copy of the given Settings pointing at them; the copy
    is also kept as `.settings` (with `.broker` and `.redis`) for the caller.
    """

    def __init__(self, settings: Settings, data_dir: Path, *, kafka_port: int | None = None,
                 redis_port: int | None = None, controller_port: int | None = None,
                 redis_appendonly: bool = False) -> None:
        self.base_settings = settings
        # Absolute: the services run with their data directory as working directory.
        self.data_dir = Path(data_dir).resolve()
        self._kafka_port = kafka_port
        self._redis_port = redis_port
        self._controller_port = controller_port
        self._redis_appendonly = redis_appendonly
        self.broker: KafkaBroker | None = None
        self.redis: RedisServer | None = None
        self.settings: Settings = settings

    def _prepare(self) -> tuple[KafkaBroker, RedisServer]:
        # Check every tool before starting anything, so a missing redis-server
        # is reported before a 20 s jar download rather than after it.
        ensure_redis_server()
        libs = ensure_kafka_libs(self.base_settings.kafka_version, self.base_settings.cache_dir)
        broker = KafkaBroker(port=self._kafka_port or free_port(),
                             data_dir=self.data_dir / "kafka", libs_dir=libs,
                             heap=self.base_settings.kafka_heap,
                             controller_port=self._controller_port)
        redis = RedisServer(self._redis_port or free_port(), self.data_dir / "redis",
                            appendonly=self._redis_appendonly)
        return broker, redis

    def start(self, timeout: float = 60) -> Settings:
        """Start the broker, then Redis; return Settings pointing at both."""
        if self.broker is None or self.redis is None:
            self.broker, self.redis = self._prepare()
        try:
            self.broker.start(timeout=timeout)
            self.redis.start()
        except BaseException:
            self.stop()
            raise
        self.settings = self.base_settings.with_(
            kafka_bootstrap_servers=self.broker.bootstrap, redis_url=self.redis.url)
        return self.settings

    def stop(self) -> None:
        """Stop Redis, then the broker (reverse start order).  Idempotent."""
        if self.redis is not None:
            self.redis.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
