"""Kafka clients as every part of the product makes them: one producer and one
consumer set-up, so durability and security options are decided once."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kernel.settings import Settings


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """The producer every sender in this project uses: durable and batched.

    acks=all + idempotence: an acknowledged event is on the broker and a retry
    never writes it twice.  A few ms of linger lets batches form under load at
    a latency cost that is invisible next to the pipeline's.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"{settings.app_id}-producer",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "max_request_size": max(1024 * 1024, settings.max_event_bytes * 2),
    }
    return AIOKafkaProducer(**options | overrides)


def make_consumer(settings: Settings, *topics: str, group_id: str | None,
                  **overrides: Any) -> AIOKafkaConsumer:
    """A consumer in `group_id` (also its client id) that commits only when told to.

    Offsets are committed by the caller once a batch is done with (at least once);
    a group new to a partition starts at its oldest record.  Callers pass what
    differs for them (assignor, fetch sizes, start) as `overrides`.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "group_id": group_id,
        "client_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_s * 1000,
        "heartbeat_interval_ms": settings.session_timeout_s * 200,
    }
    return AIOKafkaConsumer(*topics, **options | overrides)


async def start_producer(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """Start it; if Kafka cannot be reached, close it before raising (no leak warning)."""
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def existing_topics(producer: AIOKafkaProducer) -> set[str]:
    """The broker's topics, from one metadata request on the producer's connection."""
    metadata = await producer.client.fetch_all_metadata()
    return set(metadata.topics())
