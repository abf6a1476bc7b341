"""Send JSON lines to Kafka (`cxt produce`), routed by channel.

Each line is one interaction envelope; its channel is the part of `type`
before the first dot, and it goes to that channel's inbound topic, keyed by
`customer_id` when it has one.  With a topic override every line goes to that
topic verbatim (e.g. customer records to cx.customers.v1), which also lets a
tester feed deliberately broken lines to an inbound topic to see them
dead-lettered.

The routing (`route_line`) is pure so it can be tested without a broker.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kernel.errors import CxtError
from kernel.kafka import existing_topics, make_producer, start_producer
from kernel.settings import CHANNELS, Settings, Topics
from kernel.status import StatusLine

# Sends in flight before we wait for their acknowledgements: bounds memory on
# big files while still letting aiokafka fill whole batches.
MAX_IN_FLIGHT = 5000


@dataclass(frozen=True)
class Routed:
    """A line ready to send."""

    line_no: int
    topic: str
    key: bytes | None
    value: bytes
    parsed: bool = True  # False: sent verbatim under a topic override, not JSON


@dataclass(frozen=True)
class LineError:
    line_no: int
    reason: str  # stable code: invalid_json, not_an_object, missing_type, ...
    message: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}: {self.message}"


@dataclass
class ProduceReport:
    sent: int = 0
    skipped: int = 0
    errors: list[LineError] = field(default_factory=list)
    by_topic: Counter[str] = field(default_factory=Counter)
    # Lines sent verbatim under --topic although they are not JSON objects.
    sent_unparsed: int = 0
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        topics = ", ".join(f"{t}={n}" for t, n in sorted(self.by_topic.items()))
        text = (f"sent {self.sent} ({topics or 'nothing'}), skipped {self.skipped}, "
                f"{self.elapsed:.1f}s, {self.rate:,.0f}/s")
        if self.sent_unparsed:
            text += f", {self.sent_unparsed} of them not JSON objects (sent verbatim)"
        return text


def customer_key(obj: dict[str, Any]) -> bytes | None:
    customer_id = obj.get("customer_id")
    if isinstance(customer_id, str) and customer_id:
        return customer_id.encode()
    return None


def _parse_object(text: str) -> dict[str, Any] | str:
    """The JSON object on this line, or a reason code why it is not one."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "invalid_json"
    return obj if isinstance(obj, dict) else "not_an_object"


def route_line(
    line: str, line_no: int, topics: Topics, *, topic: str | None = None,
) -> Routed | LineError | None:
    """Where one input line goes; None for a blank line (ignored, not an error)."""
    text = line.strip()
    if not text:
        return None
    obj = _parse_object(text)
    if topic is not None:
        # Override: verbatim, keyed by customer_id when there is one.
        if isinstance(obj, str):
            return Routed(line_no, topic, None, text.encode(), parsed=False)
        return Routed(line_no, topic, customer_key(obj), text.encode())
    if isinstance(obj, str):
        message = ("not valid JSON" if obj == "invalid_json"
                   else "a JSON value that is not an object")
        return LineError(line_no, obj, message)
    event_type = obj.get("type")
    if not isinstance(event_type, str) or not event_type:
        return LineError(line_no, "missing_type", "no string field 'type' to route by")
    channel = event_type.split(".", 1)[0]
    if channel not in CHANNELS:
        return LineError(line_no, "unknown_channel",
                         f"type {event_type!r}: channel {channel!r} is not one of "
                         f"{', '.join(CHANNELS)}")
    return Routed(line_no, topics.for_channel(channel), customer_key(obj), text.encode())


def route_lines(
    lines: Iterable[str], topics: Topics, *, topic: str | None = None,
) -> Iterator[Routed | LineError]:
    for line_no, line in enumerate(lines, start=1):
        routed = route_line(line, line_no, topics, topic=topic)
        if routed is not None:
            yield routed


def _open_lines(source: Iterable[str] | str | os.PathLike[str]) -> Iterable[str]:
    """A str or path is a file name ('-' is stdin); anything else is the lines."""
    if isinstance(source, str | os.PathLike):
        if str(source) == "-":
            return sys.stdin
        return _read_file(Path(source))
    return source


def _read_file(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        yield from handle


Pending = list[tuple[Routed, asyncio.Future]]


class MissingTopic(CxtError):
    """A line would go to a topic the broker does not have: without this check the
    producer retries each send for its whole timeout (40 s) and logs every retry."""

    def __init__(self, topic: str, sent: int) -> None:
        after = f" ({sent} line(s) sent before it)" if sent else ""
        super().__init__(f"topic {topic!r} does not exist (cxt topics create makes the "
                         f"project's topics){after}")


async def _settle(pending: Pending, report: ProduceReport) -> None:
    """Wait for in-flight sends; failed deliveries become line errors."""
    results = await asyncio.gather(*(fut for _, fut in pending), return_exceptions=True)
    for (item, _), result in zip(pending, results, strict=True):
        if isinstance(result, BaseException):
            report.sent -= 1
            report.by_topic[item.topic] -= 1
            report.skipped += 1
            report.errors.append(LineError(item.line_no, "send_failed", repr(result)))
    pending.clear()


async def produce_lines(
    settings: Settings,
    lines: Iterable[str] | str | os.PathLike[str],
    *,
    topic: str | None = None,
    progress: bool = True,
) -> ProduceReport:
    """Send JSON lines (an iterable, or a file path / '-') and report what happened.

    `sent` counts acknowledged lines; bad lines are in `errors` (line number and
    reason) and counted in `skipped`.
    """
    report = ProduceReport()
    status = StatusLine(enabled=progress)
    pending: Pending = []
    producer = make_producer(settings)
    started = time.monotonic()
    await start_producer(producer)
    try:
        known = await existing_topics(producer)
        if topic is not None and topic not in known:
            raise MissingTopic(topic, 0)
    except BaseException:
        await producer.stop()
        raise
    try:
        for item in route_lines(_open_lines(lines), settings.topics, topic=topic):
            if isinstance(item, LineError):
                report.skipped += 1
                report.errors.append(item)
                continue
            if item.topic not in known:
                await _settle(pending, report)
                raise MissingTopic(item.topic, report.sent)
            pending.append((item, await producer.send(item.topic, item.value, key=item.key)))
            report.sent += 1
            report.by_topic[item.topic] += 1
            report.sent_unparsed += not item.parsed
            if len(pending) >= MAX_IN_FLIGHT:
                await _settle(pending, report)
            status.update(_progress_text(report, started))
        await _settle(pending, report)
    finally:
        await producer.stop()
        report.elapsed = time.monotonic() - started
        status.done(_progress_text(report, started))
    return report


def _progress_text(report: ProduceReport, started: float) -> str:
    elapsed = max(time.monotonic() - started, 1e-9)
    return (f"produce: {report.sent:,} sent, {report.skipped:,} skipped, "
            f"{report.sent / elapsed:,.0f}/s")
