"""A worker SIGKILLed in the middle of a merge (C-1 -> C-2) and then of the unmerge, on the
real broker and Redis, while interactions keep arriving for C-1: once a worker is
restarted, every entry is in exactly one timeline, the right one, event for event."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis
from aiokafka import AIOKafkaProducer

from cxt.localstack import LocalStack
from kernel.kafka import security_options
from kernel.settings import Settings
from store.keys import Keys
from tests.support.helpers import create_topics, envelope, isolated, produce, read_topic
from tests.support.processes import WorkerProcess

ONE, TWO = "C-1", "C-2"
ONE_ENTRIES, TWO_ENTRIES = 6000, 3000
MEANWHILE = 120  # interactions for C-1 while each move runs (and the worker is down)
MEANWHILE_EVERY_S = 0.02
MARGIN = 60  # fewer than a move, more than the interactions arriving meanwhile in a poll


def _events(cid: str, tag: str, count: int) -> list[dict]:
    start = datetime.now(UTC) - timedelta(days=30)
    return [envelope("chat", cid, event_id=f"{tag}-{i:05d}",
                     occurred_at=(start + timedelta(seconds=37 * i)).strftime(
                         "%Y-%m-%dT%H:%M:%S.000Z"))
            for i in range(count)]


def _messages(events: list[dict]) -> list[tuple[bytes | None, bytes | None]]:
    return [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]


class Trickle:
    """Interactions for one customer (by customer_id), a few at a time, from a thread."""

    def __init__(self, settings: Settings, cid: str, tag: str) -> None:
        self.settings = settings
        self.events = _events(cid, tag, MEANWHILE)
        self.sent: list[str] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Trickle:
        self._thread.start()
        return self

    def join(self) -> list[str]:
        self._thread.join(60)
        assert not self._thread.is_alive(), "the producer thread did not finish"
        if self.error is not None:
            raise self.error
        return self.sent

    def _run(self) -> None:
        try:
            asyncio.run(self._send())
        except BaseException as error:  # handed to the test by join()
            self.error = error

    async def _send(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                    acks="all", linger_ms=0,
                                    **security_options(self.settings))
        await producer.start()
        try:
            topic = self.settings.topics.for_channel("chat")
            for event in self.events:
                await (await producer.send(topic, orjson.dumps(event),
                                           key=event["customer_id"].encode()))
                self.sent.append(event["event_id"])
                await asyncio.sleep(MEANWHILE_EVERY_S)
        finally:
            await producer.stop()


class Timelines:
    """Read one customer's timeline keys straight from Redis."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def zcard(self, cid: str) -> int:
        return self.client.zcard(self.keys.timeline(cid))

    def sizes(self, cid: str) -> tuple[int, int]:
        """(ZCARD of the timeline, HLEN of the entries hash)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.keys.timeline(cid))
        pipe.hlen(self.keys.entries(cid))
        zcard, hlen = pipe.execute()
        return zcard, hlen

    def entries(self, cid: str) -> tuple[set[str], dict[str, dict]]:
        """(event ids in the sorted set, event id -> entry in the hash)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zrange(self.keys.timeline(cid), 0, -1)
        pipe.hgetall(self.keys.entries(cid))
        members, bodies = pipe.execute()
        return ({m.decode() for m in members},
                {k.decode(): orjson.loads(v) for k, v in bodies.items()})

    def filed_under(self, cid: str, under: str) -> int:
        return sum(e.get("filed_under") == under for e in self.entries(cid)[1].values())


def _mismatch(t: Timelines, expected: dict[str, dict[str, str | None]]) -> list[str]:
    """What differs from `expected` (customer -> event id -> the `filed_under` it carries):
    every id in the customer's sorted set and hash, nothing else, each entry naming the
    customer whose timeline holds it and where it was first filed.  Empty: all as expected."""
    problems: list[str] = []
    for cid, want in expected.items():
        members, bodies = t.entries(cid)
        for what, got in (("ZSET", members), ("HASH", set(bodies))):
            missing, extra = set(want) - got, got - set(want)
            if missing or extra:
                problems.append(f"{cid} {what}: {len(got)} ids, {len(missing)} missing "
                                f"(e.g. {sorted(missing)[:3]}), {len(extra)} extra "
                                f"(e.g. {sorted(extra)[:3]})")
        wrong = sorted(eid for eid, entry in bodies.items()
                       if eid in want and (entry.get("customer_id") != cid
                                           or entry.get("filed_under") != want[eid]
                                           or entry.get("event_id") != eid))
        if wrong:
            problems.append(f"{cid}: {len(wrong)} entries with the wrong customer_id or "
                            f"filed_under, e.g. {wrong[0]}: {bodies[wrong[0]]}")
    ids = [set(want) for want in expected.values()]
    assert not set.intersection(*ids), "the expectation itself files an entry twice"
    return problems


def _settle(t: Timelines, expected: dict[str, dict[str, str | None]], worker: WorkerProcess,
            timeout: float = 60) -> None:
    """Until the timelines are exactly `expected`, and still are a moment later (a late
    redelivery must change nothing); fails with what differs."""
    deadline = time.monotonic() + timeout
    problems = _mismatch(t, expected)
    while problems and time.monotonic() < deadline:
        worker.assert_alive()
        time.sleep(0.5)
        problems = _mismatch(t, expected)
    if not problems:
        time.sleep(3)
        problems = _mismatch(t, expected)
    assert not problems, "\n".join(problems) + "\n" + worker.log()
    for cid in expected:
        zcard, hlen = t.sizes(cid)
        assert zcard == hlen == len(expected[cid]), (cid, zcard, hlen, len(expected[cid]))


def _kill_when(worker: WorkerProcess, ready: Callable[[], bool], what: str,
               timeout: float = 60) -> None:
    """SIGKILL the worker the moment `ready()` holds (polled as fast as Redis answers)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"never saw {what}:\n{worker.log()}"
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()
    worker.kill()


def _customer(cid: str, **fields: object) -> tuple[bytes, bytes]:
    return cid.encode(), orjson.dumps({"customer_id": cid, "name": f"Customer {cid}",
                                       **fields})


# (when the merge is killed, when the unmerge is killed)
KILLS = {
    # The merge as soon as it is recorded, before anything moved; the unmerge once the
    # root has dropped what it gave back (the moves done, the rest of the record not).
    "recorded-then-dropped": ("recorded", "dropped"),
    # Both while the entries are being added where they go (part of them there).
    "adding-then-adding": ("adding", "adding"),
    # Both once everything is added where it goes: in both timelines, or just dropped.
    "added-then-added": ("added", "added"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kills", list(KILLS.values()), ids=list(KILLS))
def test_sigkill_mid_merge_and_mid_unmerge_loses_and_doubles_no_entry(
        stack: LocalStack, tmp_path: Path, kills: tuple[str, str]) -> None:
    merge_kill, unmerge_kill = kills
    settings = isolated(stack.settings, timeline_max_entries=50_000, session_timeout_s=6)
    keys = Keys(settings.redis_prefix)
    asyncio.run(create_topics(settings))
    tag = uuid.uuid4().hex[:6]
    ones, twos = _events(ONE, f"{tag}-one", ONE_ENTRIES), _events(TWO, f"{tag}-two", TWO_ENTRIES)
    asyncio.run(produce(settings, settings.topics.customers, [_customer(ONE), _customer(TWO)]))
    asyncio.run(produce(settings, settings.topics.for_channel("chat"), _messages(ones + twos)))

    client = redis.Redis.from_url(settings.redis_url)
    t = Timelines(client, keys)
    observed: dict[str, object] = {}
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        own_one = {e["event_id"]: None for e in ones}
        own_two = {e["event_id"]: None for e in twos}
        _settle(t, {ONE: own_one, TWO: own_two}, worker, timeout=90)

        # -- merge C-1 into C-2, killed in the middle -----------------------------
        trickle = Trickle(settings, ONE, f"{tag}-m1").start()
        time.sleep(0.3)  # some of them before the merge, the rest during and after it
        asyncio.run(produce(settings, settings.topics.customers,
                            [_customer(ONE, merged_into=TWO)]))
        if merge_kill == "recorded":
            _kill_when(worker, lambda: client.exists(keys.merged_into(ONE)) == 1,
                       "the merge marker")
        elif merge_kill == "adding":
            _kill_when(worker, lambda: t.zcard(TWO) > TWO_ENTRIES + MARGIN, "C-2 growing")
        else:
            _kill_when(worker, lambda: t.zcard(TWO) >= TWO_ENTRIES + ONE_ENTRIES,
                       "C-2 holding all of C-1's entries")
        observed["merge"] = {"C-1": t.sizes(ONE), "C-2": t.sizes(TWO),
                             "moved": t.filed_under(TWO, ONE)}
        worker = WorkerProcess(settings, tmp_path).start()
        first = trickle.join()
        merged = {**own_two, **dict.fromkeys(own_one, ONE), **dict.fromkeys(first, ONE)}
        _settle(t, {ONE: {}, TWO: merged}, worker)
        assert len(merged) == ONE_ENTRIES + TWO_ENTRIES + MEANWHILE

        # -- unmerge, killed in the middle ---------------------------------------
        trickle = Trickle(settings, ONE, f"{tag}-m2").start()
        time.sleep(0.3)
        asyncio.run(produce(settings, settings.topics.customers, [_customer(ONE)]))
        if unmerge_kill == "dropped":
            _kill_when(worker, lambda: t.zcard(TWO) < len(merged), "C-2 shrinking")
        elif unmerge_kill == "adding":
            # C-1 gets the interactions arriving once the merge is cleared, a few a poll.
            _kill_when(worker, lambda: t.zcard(ONE) > MARGIN, "C-1 growing")
        else:
            _kill_when(worker, lambda: t.zcard(ONE) >= ONE_ENTRIES + MEANWHILE,
                       "C-1 holding its entries back")
        observed["unmerge"] = {"C-1": t.sizes(ONE), "C-2": t.sizes(TWO),
                               "left in C-2": t.filed_under(TWO, ONE)}
        worker = WorkerProcess(settings, tmp_path).start()
        second = trickle.join()
        _settle(t, {ONE: {**own_one, **dict.fromkeys(first), **dict.fromkeys(second)},
                    TWO: own_two}, worker)
        assert client.get(keys.merged_into(ONE)) is None
        assert not client.smembers(keys.merged_from(TWO))

        # -- every identity decision is on cx.identity.v1 ------------------------
        def decided(messages: list) -> set[str]:
            return {body["event"] for m in messages if m.value is not None
                    and (body := orjson.loads(m.value))["customer_id"] == ONE}

        found = asyncio.run(read_topic(settings, settings.topics.identity,
                                       until=lambda seen: {"merged", "unmerged"}
                                       <= decided(seen)))
        assert {"merged", "unmerged"} <= decided(found), decided(found)
        print(f"\n{kills}: at the kills (ZCARD, HLEN) and moved entries: {observed}")
    finally:
        worker.stop()
        client.close()
