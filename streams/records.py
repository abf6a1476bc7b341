"""What crosses the pipeline's edges: Kafka records in, messages out."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from domain.records import Alert
from kernel import jsonbytes
from kernel.settings import Topics
from kernel.times import utc_now_iso
from schemas.validate import Rejection
from store.timeline import NewEntry


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class Record:
    """An inbound Kafka record, independent of the consumer library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None

    @property
    def source(self) -> dict:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class Outgoing:
    """A message to publish once the batch is stored."""

    topic: str
    key: bytes | None
    value: bytes | None
    # For timeline entries: their channel, so metrics need not parse the value again.
    channel: str | None = None


def dead_letter(record: Record, reason: str, message: str, topic: str) -> Outgoing:
    """The cx.deadletter.v1 message for a rejected record (schemas/deadletter.v1.json)."""
    body = {
        "original": None if record.value is None else base64.b64encode(record.value).decode(),
        "key": None if record.key is None else base64.b64encode(record.key).decode("ascii"),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "reason": reason,
        "message": message,
        "rejected_at": utc_now_iso(),
    }
    return Outgoing(topic, record.key, jsonbytes.dumps(body))


class Messages:
    """The messages the worker publishes, built one way wherever they come from."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    def entry(self, entry: NewEntry) -> Outgoing:
        return Outgoing(self.topics.timeline, entry.customer_id.encode(), entry.body,
                        channel=entry.entry.get("channel"))

    def alert(self, alert: Alert) -> Outgoing:
        # Exact-size bytes (kernel.jsonbytes): held until Kafka has the batch.
        return Outgoing(self.topics.alerts, alert["customer_id"].encode(),
                        jsonbytes.dumps(alert))

    def identity(self, event: dict) -> Outgoing:
        return Outgoing(self.topics.identity, event["customer_id"].encode(),
                        jsonbytes.dumps(event))

    def routing(self, hint: dict) -> Outgoing:
        """A routing hint (schemas/routing-hint.v1.json), keyed by its customer (no key
        for a caller not known)."""
        cid = hint["customer_id"]
        return Outgoing(self.topics.routing, None if cid is None else cid.encode(),
                        jsonbytes.dumps(hint))

    def reject(self, record: Record, rejection: Rejection) -> Outgoing:
        return dead_letter(record, rejection.reason, rejection.message, self.topics.deadletter)
