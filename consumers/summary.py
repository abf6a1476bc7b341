"""The CRM's customer summaries (`cxt summaries`): cx.customer-summary.v1, one per customer.

A consumer group of its own (`<CXT_APP_ID>-summary`) reads cx.timeline.v1,
cx.alerts.v1, cx.customers.v1 and cx.identity.v1 in batches.  For each batch it updates what it
keeps in Redis (`store.summaries`), reads the state and the last 30 days
of timeline of every customer the batch touched, publishes their summaries
(`summarize`, pure) keyed by customer_id, waits for Kafka to confirm them, and
only then commits the batch's offsets.  A crash redelivers the batch and the
summaries are published again: harmless, the topic is compacted and each message
is a whole snapshot.  Redis or Kafka being away makes it retry the same batch with
backoff, never skip it.

Erasure.  A null value on cx.customers.v1 deletes the feed's state for that
customer and publishes a tombstone (the worker erases the timeline on the same
record).  The topics are not ordered with one another, so a timeline entry
or alert event published *before* the erasure can be read *after* it (later in
the batch, or from a partition that lags) and would otherwise bring the
customer's summary back after the tombstone.  The erasure therefore leaves a
marker (`Keys.summary_erased`, kept a week) holding the erasure time, and
anything from before it is ignored: a timeline entry by its `accepted_at`, an
alert event by the time of its latest event, and timeline entries read back from
Redis likewise.  The erasure time is the null record's Kafka timestamp, not when
this feed read it: the feed may lag the worker by minutes, and entries the worker
accepted after erasing are new, legitimate data for the customer; the record's
timestamp is also the same on every replay.  What remains uncovered is the gap
between that timestamp and the worker actually erasing (normally milliseconds;
when the worker is behind on cx.customers.v1, as long as that lag), clocks that
disagree by more than that, and a message read more than a week late.

Merges (cx.identity.v1; other identity events and its tombstones are ignored).  The
feed shows one customer for a merge, as the worker does: when C-1 is merged into
C-2 the worker re-publishes C-1's entries and alerts under the root R now holding
the timeline (customer_id R, filed_under C-1), which R's summary takes in like any
other.  On `merged` the feed deletes C-1's state (not with the erasure marker: after
an unmerge C-1's entries come back with their old accepted_at), publishes a
tombstone for C-1 and R's summary again.  While C-1 is merged (the worker's
`Keys.merged_into` is set) it keeps no state and gets no summary: its surveys and
alerts are refused and a touch of it is withheld.  On `unmerged` (C-1 taken back
from R) the worker re-publishes what it gave back under C-1, which rebuilds C-1's
state; the feed takes out of R's state what is now C-1's (the bottom-2-box surveys
among the entries in C-1's timeline, C-1's alerts, and R's newest survey if it is
one of them, replaced by the newest left in R's timeline) and publishes both.

Covered, although the topics are not ordered with one another: an `unmerged` read
before the entries it gave back (they rebuild C-1 when they come), a `merged` read
before or after R's re-published copies, C-1's entries from before the merge read
after it (refused while C-1 is merged), and a `merged` read after the unmerge that
followed it (C-1 is no longer merged: its state stays, no tombstone).  A survey or
alert filed under another customer counts only while it is still in that
customer's timeline or alerts, so R's copies from the merge read after the unmerge
change nothing.  Not covered: an `unmerged` read once C-1 has already been merged
again elsewhere (C-1's timeline is empty then, so R keeps C-1's bottom-2-box
surveys and alerts until an erasure), and, with several instances, R's summary
published by C-1's instance (identity events are keyed by C-1) racing one published
by R's, so that the older snapshot lands last until R's next message.

Several instances can share the group: the range assignor gives each instance
the same partition numbers of the four topics, and with equal partition counts
and customer_id keys that is the same customers, so one customer's erasure and
summaries are handled by one instance, in order (except a root's after an unmerge,
above: the identity event is keyed by the customer given back; the writes to the
root's state are atomic scripts, safe next to its own instance's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError

from domain.alerts import OPEN_STATUSES
from domain.contacts import contact_key, normalise_intent, parse_ms
from domain.identity import MERGED, UNMERGED
from domain.surveys import is_bottom_2_box
from kernel import logsafe, retry
from kernel.access import check_access_at_start
from kernel.kafka import make_consumer, make_producer, start_producer
from kernel.settings import CHANNELS, Settings, Topics
from kernel.status import Throughput
from kernel.times import iso_ms
from kernel.topics import ensure_topics
from schemas.validate import survey_scale
from store.keys import is_provisional
from store.stores import connect_redis, stores_on
from store.summaries import (
    AlertSeen,
    CustomerState,
    Erasure,
    SummaryState,
    SurveySeen,
    Unmerge,
)

log = logging.getLogger("cxt.summary")

T = TypeVar("T")
DAY_MS = 86_400_000
WEEK_DAYS, MONTH_DAYS = 7, 30
# A contact is an entry of one of these channels (surveys rate contacts, they are none).
CONTACT_CHANNELS: tuple[str, ...] = tuple(c for c in CHANNELS if c != "survey")
OPEN = frozenset(OPEN_STATUSES)
MAX_RECORDS = 2000
POLL_MS = 500  # also how soon a stop signal is noticed when idle
OLDER_PAGE = 100  # entries per look further back for a last contact older than 30 days


# --------------------------------------------------------------------------- the summary (pure)


def summarize(customer_id: str, entries: Iterable[dict], last_survey: dict | None,
              bottom_2_box_count: int, open_alert_ids: Iterable[str], now_ms: int) -> dict:
    """The cx.customer-summary.v1 value.

    `entries` are the customer's timeline entries, newest first, at least those of
    the last 30 days (older ones only matter for `last_contact`).  Windows are by
    `occurred_at` against `now_ms`; an entry dated after `now_ms` (a source's clock
    ahead of ours) counts as within them.  One call, chat or e-mail thread is one
    contact however many entries it has (`domain.contacts.contact_key`).
    """
    week_start, month_start = now_ms - WEEK_DAYS * DAY_MS, now_ms - MONTH_DAYS * DAY_MS
    week: dict[str, set[tuple[str, str]]] = {c: set() for c in CONTACT_CHANNELS}
    month: dict[str, set[tuple[str, str]]] = {c: set() for c in CONTACT_CHANNELS}
    intents: dict[str, _Intent] = {}
    of_contact: dict[tuple[str, str], list[tuple[int, dict]]] = {}
    newest: tuple[tuple[int, str], tuple[str, str], dict] | None = None  # (rank, key, entry)
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("channel") not in CONTACT_CHANNELS:
            continue
        key = contact_key(entry, social=True)
        occurred = parse_ms(entry.get("occurred_at"))
        if key is None or occurred is None:
            continue
        channel = entry["channel"]
        of_contact.setdefault(key, []).append((occurred, entry))
        rank = (occurred, str(entry.get("event_id")))  # the timeline's own order
        if newest is None or rank > newest[0]:
            newest = (rank, key, entry)
        if occurred < month_start:
            continue
        month[channel].add(key)
        if occurred >= week_start:
            week[channel].add(key)
        intent = normalise_intent(_payload(entry).get("intent"))
        if intent is not None:
            intents.setdefault(intent, _Intent()).add(key, occurred, entry["occurred_at"])
    repeats = sorted(((i, s) for i, s in intents.items() if len(s.contacts) >= 2),
                     key=lambda item: (-len(item[1].contacts), -item[1].last_ms, item[0]))
    alert_ids = sorted(set(open_alert_ids))
    return {
        "customer_id": customer_id,
        "as_of": iso_ms(now_ms),
        "last_contact": None if newest is None else _last_contact(newest[2],
                                                                  of_contact[newest[1]]),
        "contacts_7d": _counts(week),
        "contacts_30d": _counts(month),
        "repeat_contacts": [{"intent": i, "contacts_30d": len(s.contacts), "last_at": s.last_at}
                            for i, s in repeats],
        "last_survey": last_survey,
        "bottom_2_box_count": bottom_2_box_count,
        "open_alerts": len(alert_ids),
        "open_alert_ids": alert_ids,
    }


@dataclass(slots=True)
class _Intent:
    contacts: set[tuple[str, str]] = field(default_factory=set)
    last_ms: int = -1
    last_at: str = ""

    def add(self, key: tuple[str, str], occurred_ms: int, occurred_at: str) -> None:
        self.contacts.add(key)
        if occurred_ms > self.last_ms:
            self.last_ms, self.last_at = occurred_ms, occurred_at


def _counts(seen: Mapping[str, set]) -> dict[str, int]:
    counts = {channel: len(keys) for channel, keys in seen.items()}
    return {**counts, "total": sum(counts.values())}


def _last_contact(entry: dict, same_contact: list[tuple[int, dict]]) -> dict:
    """The newest contact entry; intent and outcome from the newest of the contact's
    entries that has one (a call.ended often has the outcome, its call.started the intent)."""
    intent = outcome = None
    for _, other in sorted(same_contact, key=lambda pair: pair[0], reverse=True):
        payload = _payload(other)
        intent = intent or normalise_intent(payload.get("intent"))
        outcome = outcome or _text(payload.get("outcome"))
    payload = _payload(entry)
    return {
        "event_id": entry.get("event_id"),
        "occurred_at": entry.get("occurred_at"),
        "channel": entry.get("channel"),
        "type": entry.get("type"),
        "intent": normalise_intent(payload.get("intent")) or intent,
        "outcome": _text(payload.get("outcome")) or outcome,
    }


def survey_summary(entry: dict) -> dict | None:
    """The `last_survey` object of a survey timeline entry; None when it has no usable score."""
    payload = _payload(entry)
    score = payload.get("score")
    if not isinstance(score, int) or isinstance(score, bool):
        return None
    try:
        low, high = survey_scale(payload)
    except (TypeError, ValueError):
        return None
    return {"event_id": entry.get("event_id"), "score": score, "scale_min": low,
            "scale_max": high, "occurred_at": entry.get("occurred_at"),
            "bottom_2_box": is_bottom_2_box(score, low)}


def open_alert_ids(alerts: Mapping[str, str]) -> list[str]:
    """Ids of the alerts whose latest status is open, escalated or acknowledged."""
    return sorted(alert_id for alert_id, status in alerts.items() if status in OPEN)


def _payload(entry: dict) -> dict:
    payload = entry.get("payload")
    return payload if isinstance(payload, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


# --------------------------------------------------------------------------- a batch, read (pure)


@dataclass(slots=True)
class BatchChanges:
    erasures: dict[str, int] = field(default_factory=dict)  # customer -> erasure ms
    surveys: list[SurveySeen] = field(default_factory=list)
    alerts: list[AlertSeen] = field(default_factory=list)
    # Customer -> time of its `merged` identity event (the latest of the batch's).
    merges: dict[str, int] = field(default_factory=dict)
    unmerges: list[Unmerge] = field(default_factory=list)
    # Customer -> time of its newest timeline entry, alert event or identity event in the
    # batch: a summary is due when that is after the customer's erasure marker (or there
    # is none) and the customer is not merged into another.
    touched: dict[str, int] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)


def read_batch(records: Iterable[ConsumerRecord], topics: Topics, now_ms: int) -> BatchChanges:
    """What a batch changes.  Never raises: an unreadable message is counted and skipped."""
    changes = BatchChanges()
    for record in records:
        if record.topic == topics.customers:
            _customer_record(record, changes, now_ms)
            continue
        if record.topic == topics.identity:
            _identity_event(record, changes, now_ms)
            continue
        if record.value is None:  # the worker's tombstone of an erased customer: the null
            changes.skipped["tombstone"] += 1  # record on cx.customers.v1 does the erasing
            continue
        try:
            value = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("customer_id"), str):
            changes.skipped["unreadable"] += 1
            continue
        cid = value["customer_id"]
        if is_provisional(cid):  # not a CRM customer (yet); linked entries come again
            changes.skipped["provisional"] += 1
            continue
        if record.topic == topics.timeline:
            seen = _timeline_entry(value, record, now_ms, changes)
        else:
            seen = _alert_event(value, record, now_ms, changes)
        if seen is not None:
            changes.touched[cid] = max(changes.touched.get(cid, seen), seen)
    return changes


def _customer_record(record: ConsumerRecord, changes: BatchChanges, now_ms: int) -> None:
    if record.value is not None:
        # A record alone changes no figure of the summary; the next interaction does.
        changes.skipped["customer record"] += 1
        return
    cid = (record.key or b"").decode("utf-8", "replace")
    if not cid or is_provisional(cid):
        changes.skipped["unreadable"] += 1
        return
    at = record.timestamp if record.timestamp and record.timestamp > 0 else now_ms
    changes.erasures[cid] = max(changes.erasures.get(cid, at), at)


def _timeline_entry(entry: dict, record: ConsumerRecord, now_ms: int,
                    changes: BatchChanges) -> int | None:
    at = parse_ms(entry.get("accepted_at")) or _record_ms(record, now_ms)
    if entry.get("channel") != "survey":
        return at
    survey = survey_summary(entry)
    occurred = parse_ms(entry.get("occurred_at"))
    if survey is None or occurred is None or not isinstance(entry.get("event_id"), str):
        changes.skipped["unreadable"] += 1
        return at
    changes.surveys.append(SurveySeen(entry["customer_id"], at, occurred, entry["event_id"],
                                      survey, survey["bottom_2_box"], _moved(entry)))
    return at


def _alert_event(alert: dict, record: ConsumerRecord, now_ms: int,
                 changes: BatchChanges) -> int | None:
    alert_id, version, status = alert.get("alert_id"), alert.get("version"), alert.get("status")
    if not (isinstance(alert_id, str) and isinstance(version, int) and isinstance(status, str)):
        changes.skipped["unreadable"] += 1
        return None
    history = alert.get("history")
    latest = history[-1] if isinstance(history, list) and history else {}
    at = (parse_ms(latest.get("at") if isinstance(latest, dict) else None)
          or parse_ms(alert.get("raised_at")) or _record_ms(record, now_ms))
    changes.alerts.append(AlertSeen(alert["customer_id"], at, alert_id, version, status,
                                    _moved(alert)))
    return at


def _moved(value: dict) -> bool:
    """Filed under another customer: it came with a merge (or arrived while merged)."""
    first = value.get("filed_under")
    return isinstance(first, str) and bool(first) and first != value["customer_id"]


def _identity_event(record: ConsumerRecord, changes: BatchChanges, now_ms: int) -> None:
    if record.value is None:  # follows the customer's erasure: cx.customers.v1's does it
        changes.skipped["tombstone"] += 1
        return
    try:
        event = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or event.get("event") not in (MERGED, UNMERGED):
        changes.skipped["unreadable" if not isinstance(event, dict) else "identity event"] += 1
        return
    cid, root = event.get("customer_id"), event.get("root") or event.get("into")
    if not (isinstance(cid, str) and cid and isinstance(root, str) and root and cid != root):
        changes.skipped["unreadable"] += 1
        return
    at = parse_ms(event.get("at")) or _record_ms(record, now_ms)
    if event["event"] == MERGED:
        changes.merges[cid] = max(changes.merges.get(cid, at), at)
    else:
        changes.unmerges.append(Unmerge(cid, root))
        changes.touched[cid] = max(changes.touched.get(cid, at), at)
    changes.touched[root] = max(changes.touched.get(root, at), at)


def _record_ms(record: ConsumerRecord, now_ms: int) -> int:
    return record.timestamp if record.timestamp and record.timestamp > 0 else now_ms


# --------------------------------------------------------------------------- the feed


def run_summaries(settings: Settings) -> None:
    """Run the feed in this process until SIGINT or SIGTERM."""
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logsafe.install(settings)
    check_access_at_start(settings)
    uvloop.run(SummaryFeed(settings).run())


class SummaryFeed:
    state: SummaryState  # set by run(): clients are made inside the event loop
    producer: AIOKafkaProducer

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.counts: Counter[str] = Counter()
        self.stop = asyncio.Event()
        self._throughput = Throughput()

    async def run(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        # Creates cx.customer-summary.v1 (compacted) if no worker has yet; like the worker,
        # an unreachable Kafka at start-up is an error (`cxt` prints it), not a retry.
        await ensure_topics(settings)
        group = f"{settings.app_id}-summary"
        consumer = make_consumer(
            settings, self.topics.timeline, self.topics.alerts, self.topics.customers,
            self.topics.identity, group_id=group,
            partition_assignment_strategy=(RangePartitionAssignor,))
        producer = make_producer(settings, client_id=group)
        self.state = stores_on(connect_redis(settings, socket_timeout=10,
                                             socket_connect_timeout=5), settings).summaries
        log.info("summaries: reading %s, %s, %s, %s as group %s; publishing %s",
                 self.topics.timeline, self.topics.alerts, self.topics.customers,
                 self.topics.identity, group, self.topics.customer_summary)
        try:
            await consumer.start()
            self.producer = await start_producer(producer)
            await self._loop(consumer)
        finally:
            self.log_status()
            log.info("summaries: stopping")
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await producer.stop()
            await self.state.redis.aclose()

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self.stop.is_set():
            batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            records = [r for part in batches.values() for r in part]
            if records:
                try:
                    await self._until_done(partial(self.process, records), "batch")
                except retry.Stopped:  # a stop while the batch was retried: left uncommitted
                    return
                await self._commit(consumer, {tp: part[-1].offset + 1
                                              for tp, part in batches.items() if part})
            if self._throughput.due():
                self.log_status()

    async def process(self, records: Sequence[ConsumerRecord]) -> None:
        """State, summaries, publish and wait for Kafka: safe to run again on the same batch."""
        changes = read_batch(records, self.topics, int(time.time() * 1000))
        await self.state.apply([Erasure(cid, at) for cid, at in changes.erasures.items()],
                               changes.surveys, changes.alerts)
        merged = list(changes.merges)
        forgotten = [cid for cid, gone in zip(merged, await self.state.forget_merged(merged),
                                              strict=True) if gone]
        # Merged meanwhile undone: no tombstone, a summary of the customer on its own.
        for cid in set(merged) - set(forgotten):
            changes.touched[cid] = max(changes.touched.get(cid, 0), changes.merges[cid])
        await self.state.take_back(changes.unmerges, survey_summary)
        now_ms = int(time.time() * 1000)
        states = await self.state.read(list(changes.touched), now_ms - MONTH_DAYS * DAY_MS)
        due = [s for s in states if not s.merged
               and (s.erased_ms is None or changes.touched[s.customer_id] > s.erased_ms)]
        await self._fill_last_contacts(due, now_ms - MONTH_DAYS * DAY_MS)
        tombstones = list(dict.fromkeys([*changes.erasures, *forgotten]))
        messages: list[tuple[str, bytes | None]] = [(cid, None) for cid in tombstones]
        messages += [(s.customer_id, orjson.dumps(summarize(
            s.customer_id, s.entries, s.last_survey, s.bottom_2_box_count,
            open_alert_ids(s.alerts), now_ms))) for s in due]
        await self._publish(messages)
        self.counts.update({"in": len(records), "summaries": len(due),
                            "tombstones": len(tombstones),
                            # Touched only by messages from before its erasure, or merged
                            # into another customer: no summary.
                            "withheld": len(states) - len(due),
                            **{f"skipped:{k}": v for k, v in changes.skipped.items()}})

    async def _fill_last_contacts(self, states: Sequence[CustomerState], before_ms: int) -> None:
        """For customers without a contact in the window, look further back for the last one."""
        missing = [s for s in states if not any(_is_contact(e) for e in s.entries)]
        offset = 0
        while missing:
            pages = await self.state.older(missing, before_ms, offset, OLDER_PAGE)
            still = []
            for state, (page, more) in zip(missing, pages, strict=True):
                found = next((e for e in page if _is_contact(e)), None)
                if found is not None:
                    state.entries.append(found)
                elif more:
                    still.append(state)
            missing, offset = still, offset + OLDER_PAGE

    async def _publish(self, messages: Sequence[tuple[str, bytes | None]]) -> None:
        topic, send = self.topics.customer_summary, self.producer.send
        # Sent in order, so a tombstone and a later summary of one customer keep theirs.
        pending = [await send(topic, value, key=cid.encode()) for cid, value in messages]
        await asyncio.gather(*pending)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
                      ) -> None:
        try:
            await self._until_done(lambda: consumer.commit(offsets), "commit")
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved these partitions elsewhere; their new owner reads the batch
            # again and republishes the same snapshots.
            log.warning("commit not possible after a rebalance (%s); the batch will be "
                        "read again", exc)
        except retry.Stopped:
            log.warning("stopped before the last batch was committed; it will be read again")

    async def _until_done(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        # A commit refused after a rebalance is not retried: the partitions moved.
        return await retry.until_done(attempt, what, log, stop=self.stop,
                                      permanent=(CommitFailedError, IllegalStateError))

    def log_status(self) -> None:
        total = self.counts["in"]
        rate = self._throughput.rate(total)
        skipped = {k.split(":", 1)[1]: v for k, v in self.counts.items()
                   if k.startswith("skipped:") and v}
        log.info("status: %d records in (%.0f/s), %d summaries published, %d tombstones, "
                 "%d withheld (erased or merged), skipped %s", total, rate,
                 self.counts["summaries"], self.counts["tombstones"], self.counts["withheld"],
                 skipped or "none")


def _is_contact(entry: dict) -> bool:
    return entry.get("channel") in CONTACT_CHANNELS and contact_key(entry, social=True) is not None
