"""The peer: the benchmark topology written with Quix Streams (issue 6, /tmp/bench-spec.md).

    .venv/bin/python bench/impl_quix.py        # runs until SIGTERM / SIGINT

What a competent Quix Streams user would write for the same job (five inbound topics ->
validate -> resolve -> timeline in Redis -> cx.timeline.v1, bottom-2-box surveys -> one alert):

* an `Application`: consumer group `settings.app_id`, earliest offsets, at-least-once, a
  checkpoint every COMMIT_INTERVAL_S seconds (env QUIX_COMMIT_INTERVAL_S, default 0.25);
  offsets are committed only after the sink flushed and Kafka acknowledged every message;
* per inbound topic a StreamingDataFrame over the raw bytes that validates each value with
  our `schemas.validate.check_interaction` (a failure is a value, never an exception) and
  feeds one sink;
* `TimelineSink`, a `BatchingSink`: on each checkpoint it resolves identities (one MGET),
  stores every entry (one pipeline of a store-if-absent Lua script over the customer's
  sorted set + hash), de-duplicates alerts (one pipeline of SET NX GET on Keys.alert),
  then produces dead letters, timeline entries and alerts and waits for Kafka's acks.
  A Redis outage is reported as backpressure: Quix pauses, rewinds to the last commit
  and retries.

Dead letters are produced by the sink, not by a filter branch + `to_topic`: Quix copies
(pickles) the value at every branch point, which here cost more than validation itself
(~29 vs ~25 us per event), for the sake of a branch that almost never fires.

Left out compared with ours (`python -m cxt worker`): the customers topic (identity index
upkeep, linking provisional profiles; the harness seeds the index), timeline retention
trimming, hourly survey counters, alert context and category rules, the per-customer /
recent / due alert indexes, escalation and alert actions, the metrics endpoint.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from typing import NamedTuple

import orjson
import redis
from quixstreams import Application
from quixstreams.kafka import Producer
from quixstreams.models import TopicConfig
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch

from domain.alerts import alert_id_for
from domain.identity import NeverMatch, choose_owner, parse_claimants
from domain.surveys import is_bottom_2_box
from kernel.settings import Settings
from kernel.times import iso_ms, utc_now_iso
from schemas.validate import (
    Interaction,
    Rejection,
    check_interaction,
    survey_scale,
)
from store.keys import Keys, is_provisional
from store.timeline import AddResult, classify_insert
from streams.identity import identity_lookups
from streams.records import Record, dead_letter

# Checkpoint period.  Latency is about one period at p50 and two at p99 (0.25 s: p50 ~260 ms,
# p99 ~510 ms at 2,000 events/s); 0.5 s spends ~10% less CPU per event but puts p99 near 1 s.
COMMIT_INTERVAL_S = float(os.environ.get("QUIX_COMMIT_INTERVAL_S") or 0.25)
# The run loop checks the checkpoint only between polls: the default 1 s poll timeout
# would hold the commit (and so the publishes) of a burst for a second.
POLL_TIMEOUT_S = 0.05
STATUS_EVERY_S = 10.0
REDIS_RETRY_AFTER_S = 1.0

# KEYS: timeline sorted set, entries hash.  ARGV: event_id, occurred ms, entry JSON.
# Returns 1 when stored, else the JSON stored before (our redelivery, or a duplicate id).
ADD_ENTRY = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return existing end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


class Rejected(NamedTuple):
    rejection: Rejection
    raw: bytes | None


def validator(channel: str, max_bytes: int):
    def check(raw: bytes | None) -> Interaction | Rejected:
        checked = check_interaction(raw, channel, max_bytes=max_bytes)
        return Rejected(checked, raw) if isinstance(checked, Rejection) else checked

    return check


class TimelineSink(BatchingSink):
    def __init__(self, settings: Settings, client: redis.Redis, producer: Producer) -> None:
        super().__init__()
        self.topics = settings.topics
        self.keys = Keys(settings.redis_prefix)
        self.redis = client
        self.producer = producer
        self.add_entry = client.register_script(ADD_ENTRY)
        self.records_in = self.published = self.alerts = self.dead = 0
        self._delivery_errors: list[object] = []

    def setup(self) -> None:
        self.redis.ping()

    def flush(self) -> None:
        # One round of work per checkpoint over all partitions' batches (BatchingSink's
        # own flush would call write() once per topic partition: 30 round trips here).
        try:
            items = [(b.topic, b.partition, item) for b in self._batches.values() for item in b]
            if items:
                self._write(items)
        finally:
            self._batches.clear()

    def write(self, batch: SinkBatch) -> None:
        self._write([(batch.topic, batch.partition, item) for item in batch])

    def _write(self, items: list) -> None:
        accepted, rejected = [], []
        for topic, partition, item in items:
            if isinstance(item.value, Rejected):
                record = Record(topic, partition, item.offset, item.key, item.value.raw,
                                item.timestamp)
                rejected.append(dead_letter(record, item.value.rejection.reason,
                                            item.value.rejection.message, self.topics.deadletter))
            else:
                source = {"topic": topic, "partition": partition, "offset": item.offset}
                accepted.append((item.value, source, item.timestamp))
        try:
            entries = self._store(accepted, self._resolve([i for i, _, _ in accepted]))
            alerts = self._raise_alerts(entries)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            print(f"quix: redis unavailable ({exc}); retrying", file=sys.stderr, flush=True)
            raise SinkBackpressureError(retry_after=REDIS_RETRY_AFTER_S) from exc

        for out in rejected:
            self._produce(out.topic, out.key, out.value)
        for owner, body, _, _, _ in entries:
            self._produce(self.topics.timeline, owner.encode(), body)
        for owner, body in alerts:
            self._produce(self.topics.alerts, owner.encode(), body)
        left = self.producer.flush()
        if left or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise RuntimeError(f"Kafka did not acknowledge {left} message(s): {errors[:3]}")
        self.records_in += len(items)
        self.published += len(entries)
        self.alerts += len(alerts)
        self.dead += len(rejected)

    def _resolve(self, interactions: list[Interaction]) -> list[str]:
        """customer_id, else the first claimed identity key, else a provisional id."""
        wanted, spans = identity_lookups(interactions)
        found = self.redis.mget([self.keys.identity(k) for k in wanted]) if wanted else []
        claimants = [parse_claimants(None if v is None else v.decode()) for v in found]
        return [choose_owner(item.customer_id, wanted[a:b], claimants[a:b], {}, NeverMatch()).root
                for item, (a, b) in zip(interactions, spans, strict=True)]

    def _store(self, accepted: list, owners: list[str]) -> list:
        """Write every entry in one pipeline; return those to publish (not source duplicates)."""
        if not accepted:
            return []
        accepted_at = utc_now_iso()
        pipe = self.redis.pipeline(transaction=False)
        entries = []
        for (item, source, timestamp), owner in zip(accepted, owners, strict=True):
            entry = {"event_id": item.event_id, "customer_id": owner, "channel": item.channel,
                     "type": item.type, "occurred_at": item.occurred_at,
                     "accepted_at": accepted_at, "payload": item.payload, "source": source}
            if item.identity:
                entry["identity"] = item.identity
            if is_provisional(owner):
                entry["provisional"] = True
            body = orjson.dumps(entry)
            self.add_entry(keys=[self.keys.timeline(owner), self.keys.entries(owner)],
                           args=[item.event_id, item.occurred_ms, body], client=pipe)
            entries.append((owner, body, item, source, timestamp))
        replies = pipe.execute()
        return [e for e, reply in zip(entries, replies, strict=True)
                if classify_insert(reply, e[3])[0] is not AddResult.DUPLICATE]

    def _raise_alerts(self, entries: list) -> list[tuple[str, bytes]]:
        """One alert per bottom-2-box survey: SET NX GET; a redelivery republishes it."""
        now_ms = int(time.time() * 1000)
        raised = []
        for owner, _, item, source, timestamp in entries:
            if item.channel != "survey":
                continue
            score, (low, high) = item.payload["score"], survey_scale(item.payload)
            if not is_bottom_2_box(score, low):
                continue
            alert = {"alert_id": alert_id_for(item.event_id), "event": "raised",
                     "status": "open", "version": 1, "kind": "bottom_2_box",
                     "customer_id": owner, "survey_event_id": item.event_id, "score": score,
                     "scale_min": low, "scale_max": high,
                     "contact_id": item.payload.get("contact_id"),
                     "survey_occurred_at": item.occurred_at, "raised_at": iso_ms(now_ms),
                     "latency_ms": max(0, now_ms - timestamp), "source": source}
            raised.append((owner, alert["alert_id"], orjson.dumps(alert), source))
        if not raised:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for _, alert_id, body, _ in raised:
            pipe.set(self.keys.alert(alert_id), body, nx=True, get=True)
        out = []
        for (owner, _, body, source), before in zip(raised, pipe.execute(), strict=True):
            if before is None:
                out.append((owner, body))
                continue
            stored = orjson.loads(before)
            if stored.get("source") == source and stored.get("version") == 1:
                out.append((owner, before))  # our own earlier attempt, not committed
        return out

    def _produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.producer.produce(topic, value, key, on_delivery=self._delivered)

    def _delivered(self, err: object, _msg: object) -> None:
        if err is not None:
            self._delivery_errors.append(err)


def report_status(sink: TimelineSink, stop: threading.Event) -> None:
    last, last_at = 0, time.monotonic()
    while not stop.wait(STATUS_EVERY_S):
        now, count = time.monotonic(), sink.records_in
        print(f"quix: in {count:,} ({(count - last) / (now - last_at):,.0f}/s)  timeline "
              f"{sink.published:,}  alerts {sink.alerts:,}  dead-lettered {sink.dead:,}",
              file=sys.stderr, flush=True)
        last, last_at = count, now


def exit_now(*_: object) -> None:
    raise SystemExit(0)


def main() -> int:
    # Until app.run() installs Quix's own handlers (a last checkpoint, then return).
    signal.signal(signal.SIGTERM, exit_now)
    signal.signal(signal.SIGINT, exit_now)
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="cxt-quix-state-") as state_dir:
        app = Application(
            broker_address=settings.kafka_bootstrap_servers,
            consumer_group=settings.app_id,
            auto_offset_reset="earliest",
            commit_interval=COMMIT_INTERVAL_S,
            consumer_poll_timeout=POLL_TIMEOUT_S,
            consumer_extra_config={"session.timeout.ms": settings.session_timeout_s * 1000},
            state_dir=state_dir,  # stateless, but Quix creates the directory anyway
            loglevel=settings.log_level.upper(),
        )
        client = redis.Redis.from_url(settings.redis_url)
        producer = app.get_producer()
        sink = TimelineSink(settings, client, producer)
        # The harness creates the topics; should one be missing, Quix creates it like ours.
        shape = TopicConfig(num_partitions=settings.topics.partitions,
                            replication_factor=settings.topics.replication)
        for channel, name in settings.topics.inbound.items():
            topic = app.topic(name, key_deserializer="bytes", value_deserializer="bytes",
                              config=shape)
            app.dataframe(topic).apply(validator(channel, settings.max_event_bytes)).sink(sink)

        stop = threading.Event()
        threading.Thread(target=report_status, args=(sink, stop), daemon=True).start()
        print(f"quix: consuming {', '.join(settings.topics.inbound.values())} as "
              f"{settings.app_id}", file=sys.stderr, flush=True)
        try:
            app.run()  # Quix handles SIGTERM / SIGINT: a last checkpoint, then returns
        finally:
            stop.set()
            producer.flush(10)
            client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
