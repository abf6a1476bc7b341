"""The ceiling: the same topology as `python -m cxt worker`, written by hand, minimal.

    KAFKA_BOOTSTRAP_SERVERS=... REDIS_URL=... .venv/bin/python bench/impl_ceiling.py

A yardstick for the benchmark (bench/compare.py), not a product: one
AIOKafkaConsumer, redis-py (asyncio, hiredis), orjson and uvloop, one batch
at a time, roughly the fastest a Python worker can reasonably do this work:

    getmany -> validate (orjson) -> dead-letter the bad -> one MGET of the
    identity keys -> one Lua script call for all writes (HSETNX entry, ZADD NX
    timeline, SET NX alert) -> publish new entries and new alerts -> commit offsets.

Two shortcuts past the libraries' per-message costs, each halving client CPU
in measurement: the writes go in one script call packed by hiredis, not a
redis-py pipeline of 2-3 commands per event (redis-py packs every argument and
reads every reply in Python, ~40 us per event); and the publishes go as one
producer batch per partition (create_batch/send_batch), not a send() per
message.  The script names every key in KEYS but spans many hash slots, so it
needs a single Redis (not Redis Cluster).

Every 10 s it prints to stderr
    ceiling: in <records consumed> (<rate>/s) published <n> dead-lettered <n> alerts <n>

Like ours it is at-least-once and idempotent by event_id: offsets are
committed after Redis and after Kafka acknowledged every publish, and a record
redelivered after a crash is published again (found by its stored `source`)
without writing anything twice.  Transient Redis/Kafka errors retry the step
with backoff; nothing is skipped.

Deliberately left out, compared with ours:
  * validation is minimal: field presence and types, the type/topic channel
    match and a parsable occurred_at; no JSON Schema, no RFC 3339 strictness,
    no payload schemas, no scale checks, terse dead-letter messages;
  * no retention trimming (timeline_max_entries / max age);
  * no cx.customers.v1 processing and no late linking of provisional profiles;
  * alerts carry no context, rated contact, category or ack deadline, and have
    no lifecycle (actions, escalation); no hourly survey counters;
  * no metrics endpoint, no worker scaling beyond Kafka's consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

import hiredis
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.partitioner import DefaultPartitioner
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.alerts import alert_id_for
from domain.surveys import is_bottom_2_box
from kernel.settings import Settings
from kernel.times import iso_ms, utc_now_iso
from schemas import validate as v
from schemas.validate import identity_keys, survey_scale
from store.keys import Keys, provisional_id
from streams.records import Record, dead_letter

TRANSIENT = (RedisConnectionError, RedisTimeoutError, NoScriptError, KafkaError, OSError)
EPOCH, ONE_MS = datetime(1970, 1, 1, tzinfo=UTC), timedelta(milliseconds=1)
log = logging.getLogger("ceiling")

# The whole batch's writes in one command.  Per event: KEYS entries hash, timeline zset
# [, alert key]; ARGV event_id, occurred ms, entry JSON, alert JSON or "".  Returns per
# event 1 (stored now) or the entry already stored, then for an alert 1 or the stored one.
WRITE = """
local out, k = {}, 1
for i = 1, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[k], id, ARGV[i + 2]) == 1 then out[#out + 1] = 1
  else out[#out + 1] = redis.call('HGET', KEYS[k], id) end
  redis.call('ZADD', KEYS[k + 1], 'NX', ARGV[i + 1], id)
  k = k + 2
  if ARGV[i + 3] ~= '' then
    if redis.call('SET', KEYS[k], ARGV[i + 3], 'NX') then out[#out + 1] = 1
    else out[#out + 1] = redis.call('GET', KEYS[k]) end
    k = k + 1
  end
end
return out
"""
WRITE_SHA = hashlib.sha1(WRITE.encode()).hexdigest()


class Bad(Exception):
    """A record to dead-letter: args are (reason, message)."""


def check(value: bytes | None, channel: str, max_bytes: int) -> tuple[dict, int, list[str]]:
    """(event, occurred epoch ms, identity keys if no customer_id) or raise Bad."""
    if value is not None and len(value) > max_bytes:
        raise Bad(v.TOO_LARGE, f"value is {len(value)} bytes")
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise Bad(v.INVALID_JSON, str(exc)) from None
    if not isinstance(event, dict):
        raise Bad(v.NOT_AN_OBJECT, "expected a JSON object")
    kind, when, payload = event.get("type"), event.get("occurred_at"), event.get("payload")
    if not (isinstance(event.get("event_id"), str) and isinstance(kind, str)
            and isinstance(when, str) and isinstance(payload, dict)):
        raise Bad(v.SCHEMA_VIOLATION, "event_id, type, occurred_at (strings), payload (object)")
    if kind.split(".", 1)[0] != channel:
        raise Bad(v.CHANNEL_MISMATCH, f"type {kind!r} on the {channel} topic")
    try:
        occurred_ms = (datetime.fromisoformat(when) - EPOCH) // ONE_MS
    except (ValueError, TypeError):  # TypeError: no offset
        raise Bad(v.INVALID_TIMESTAMP, f"occurred_at {when!r}") from None
    keys: list[str] = []
    if not isinstance(event.get("customer_id"), str):
        keys = identity_keys(event.get("identity") or {})
        if not keys:
            raise Bad(v.NO_CUSTOMER, "no customer_id and no identity")
    if channel == "survey":
        score = payload.get("score")
        if not isinstance(score, int) or isinstance(score, bool):
            raise Bad(v.SCHEMA_VIOLATION, "payload.score must be an integer")
        survey_scale(payload)  # raises on a non-numeric scale
    return event, occurred_ms, keys


class Ceiling:
    def __init__(self, settings: Settings) -> None:
        self.s, self.keys, self.topics = settings, Keys(settings.redis_prefix), settings.topics
        self.channel_of = settings.topics.channel_of
        self.redis = Redis.from_url(settings.redis_url)
        self.partitioner, self.partitions = DefaultPartitioner(), {}
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5,
            max_batch_size=1 << 20, max_request_size=8 << 20)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=settings.app_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_bytes=16 << 20, max_partition_fetch_bytes=2 << 20,
            session_timeout_ms=settings.session_timeout_s * 1000)
        self.lock, self.stopping = asyncio.Lock(), asyncio.Event()
        self.n_in = self.n_out = self.n_dead = self.n_alerts = 0

    async def retry(self, what: str, step):  # step: a coroutine factory
        delay = 0.1
        while True:
            try:
                return await step()
            except (CommitFailedError, IllegalStateError):
                raise
            except TRANSIENT as exc:
                if self.stopping.is_set():
                    raise
                log.warning("%s failed (%s: %s); retrying in %.1fs", what,
                            type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def batch(self, records: list) -> None:
        dead, good = [], []
        for m in records:
            channel = self.channel_of[m.topic]
            try:
                good.append((m, channel, *check(m.value, channel, self.s.max_event_bytes)))
            except Bad as bad:
                rec = Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                dead.append(dead_letter(rec, *bad.args, self.topics.deadletter))
            except Exception as exc:  # never crash on input
                rec = Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                dead.append(dead_letter(rec, v.SCHEMA_VIOLATION, repr(exc)[:200],
                                        self.topics.deadletter))
        out = [(d.topic, d.key, d.value) for d in dead]
        if good:
            out += await self.store(good)
        self.n_in += len(records)
        self.n_dead += len(dead)

        await self.retry("publish", lambda: self.publish(out))

    async def publish(self, out: list[tuple[str, bytes | None, bytes]]) -> None:
        """Send in batches built per partition (cheaper than a send() per message)."""
        batches, sent = {}, []
        for topic, key, value in out:
            parts = self.partitions.get(topic)
            if parts is None:
                parts = self.partitions[topic] = sorted(await self.producer.partitions_for(topic))
            tp = (topic, self.partitioner(key, parts, parts))
            batch = batches.get(tp)
            if batch is None or batch.append(key=key, value=value, timestamp=None) is None:
                if batch is not None:  # full
                    sent.append(await self.producer.send_batch(batch, tp[0], partition=tp[1]))
                batches[tp] = batch = self.producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for (topic, partition), batch in batches.items():
            sent.append(await self.producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)

    async def write(self, keys: list, args: list) -> list:
        """EVALSHA WRITE, packed by hiredis (redis-py packs argument by argument in Python)."""
        packed = hiredis.pack_command((b"EVALSHA", WRITE_SHA, len(keys), *keys, *args))
        conn = await self.redis.connection_pool.get_connection()
        try:
            await conn.send_packed_command(packed)
            return await conn.read_response()
        except NoScriptError:  # Redis restarted: load it again, then retry
            await self.redis.script_load(WRITE)
            raise
        finally:
            await self.redis.connection_pool.release(conn)

    async def store(self, good: list) -> list[tuple[str, bytes, bytes]]:
        wanted = [key for *_, keys in good for key in keys]
        lookup = [self.keys.identity(key) for key in wanted]
        found = (await self.retry("lookup", lambda: self.redis.mget(lookup))) if wanted else []
        found_by_key = dict(zip(wanted, found, strict=True))
        accepted_at, now_ms = utc_now_iso(), int(time.time() * 1000)
        k, keys_out, args = self.keys, [], []
        items = []  # (owner, entry body, source, alert body or b"")
        for m, channel, event, occurred_ms, keys in good:
            owner = event.get("customer_id") if not keys else next(
                (c.decode() for c in map(found_by_key.get, keys) if c), None
            ) or provisional_id(keys[0])
            source = {"topic": m.topic, "partition": m.partition, "offset": m.offset}
            payload, event_id = event["payload"], event["event_id"]
            body = orjson.dumps({
                "event_id": event_id, "customer_id": owner, "channel": channel,
                "type": event["type"], "occurred_at": event["occurred_at"],
                "accepted_at": accepted_at, "payload": payload, "source": source})
            keys_out += (k.entries(owner), k.timeline(owner))
            alert = b""
            if channel == "survey" and is_bottom_2_box(payload["score"],
                                                       survey_scale(payload)[0]):
                alert_id = alert_id_for(event_id)
                alert = orjson.dumps({
                    "event": "raised", "alert_id": alert_id, "status": "open", "version": 1,
                    "kind": "bottom_2_box", "survey_event_id": event_id, "customer_id": owner,
                    "score": payload["score"], "raised_at": iso_ms(now_ms),
                    "latency_ms": max(0, now_ms - (m.timestamp or now_ms))})
                keys_out.append(k.alert(alert_id))
            args += (event_id, occurred_ms, body, alert)
            items.append((owner, body, source, alert))
        replies = iter(await self.retry("store", lambda: self.write(keys_out, args)))
        out = []
        for owner, body, source, alert in items:
            stored, stored_alert = next(replies), alert and next(replies)
            if stored != 1:  # already stored: republish our own redelivery, drop a duplicate
                if orjson.loads(stored).get("source") != source:
                    continue
                body = stored
            out.append((self.topics.timeline, owner.encode(), body))
            if stored_alert == 1:
                self.n_alerts += 1
            if stored_alert == 1 or (stored != 1 and stored_alert):
                out.append((self.topics.alerts, owner.encode(),
                            alert if stored_alert == 1 else stored_alert))
        self.n_out += len(out)
        return out

    async def run(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(list(self.topics.inbound.values()), listener=Revoke(self.lock))
        status = asyncio.create_task(self.status())
        try:
            await self.retry("script load", lambda: self.redis.script_load(WRITE))
            while not self.stopping.is_set():
                batches = await self.consumer.getmany(
                    timeout_ms=self.s.batch_window_ms, max_records=self.s.batch_size)
                if not batches:
                    continue
                async with self.lock:
                    records = [m for messages in batches.values() for m in messages]
                    try:
                        await self.batch(records)
                        offsets = {tp: ms[-1].offset + 1 for tp, ms in batches.items()}
                        await self.retry("commit", lambda o=offsets: self.consumer.commit(o))
                    except (CommitFailedError, IllegalStateError) as exc:  # rebalanced
                        log.warning("commit failed (%s); the new owner redoes the batch", exc)
        except (*TRANSIENT, asyncio.CancelledError):
            if not self.stopping.is_set():
                raise  # retry gives up only when we are stopping (uncommitted: redelivered)
        finally:
            status.cancel()
            await self.consumer.stop()
            await self.producer.stop()
            await self.redis.aclose()

    async def status(self) -> None:
        last_n, last_t = 0, time.monotonic()
        while True:
            await asyncio.sleep(10)
            now = time.monotonic()
            print(f"ceiling: in {self.n_in} ({(self.n_in - last_n) / (now - last_t):.0f}/s) "
                  f"published {self.n_out} dead-lettered {self.n_dead} alerts {self.n_alerts}",
                  file=sys.stderr, flush=True)
            last_n, last_t = self.n_in, now


class Revoke(ConsumerRebalanceListener):
    """Let the batch in flight finish (and commit) before partitions move."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock

    async def on_partitions_revoked(self, revoked) -> None:
        async with self.lock:
            pass

    async def on_partitions_assigned(self, assigned) -> None:
        pass


async def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    app = Ceiling(Settings.from_env())
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def stop() -> None:  # finish the batch in flight; if stuck (retrying), give up after 5 s
        app.stopping.set()
        loop.call_later(5, task.cancel)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    print("ceiling: starting", file=sys.stderr, flush=True)
    with contextlib.suppress(asyncio.CancelledError):  # the 5 s limit above
        await app.run()
    print(f"ceiling: stopped after {app.n_in} records", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(uvloop.run(main()))
