"""The agent context from the digest (store.digest, the worker's intent index) against
the same context ranked from the whole timeline, on a real Redis: realistic timelines
of 1,000 entries over 300 days (calls and chats of two entries, surveys minutes after
the contact they rate, some without an intent of their own), several intents, with
and without a contact being taken, open alerts on old surveys."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from cxt.localstack import LocalStack
from cxt.traffic import (
    CONTACT_IDS,
    Contact,
    call_end_fields,
    call_start,
    chat_end_fields,
    chat_start,
    email_payload,
    social_payload,
    survey_payload,
)
from dashboard import agent_view
from dashboard.agent_view import agent_context
from dashboard.context import build_context
from dashboard.prompts import AgentConfig, load_agent_config
from store.alerts import AlertStore
from store.digest import SURVEYS_COMPLETE
from store.keys import Keys
from store.timeline import INDEX_CAP, NewEntry, TimelineStore
from tests.support.helpers import REPO

NOW = datetime.now(UTC).replace(microsecond=0)
NOW_MS = int(NOW.timestamp() * 1000)
SPREAD_DAYS = 300
COMPARED = ("events", "prompts", "prompts_held_back", "at_risk", "open_alerts", "intent")
UNINDEXED = ("C-dg1", "C-dg4")


@pytest.fixture(scope="module")
def config() -> AgentConfig:
    return load_agent_config(REPO / "config" / "agent_context.toml")


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _entry(cid: str, event_id: str, event_type: str, moment: datetime,
           payload: dict, rng: random.Random) -> dict:
    entry: dict[str, Any] = {
        "event_id": event_id, "customer_id": cid, "channel": event_type.split(".")[0],
        "type": event_type, "occurred_at": _stamp(moment), "accepted_at": _stamp(moment),
        "payload": payload, "source": {"topic": "t", "partition": 0, "offset": 0}}
    if entry["channel"] in ("chat", "email", "social") and rng.random() < 0.3:
        score = round(rng.uniform(-0.9, 0.9), 3)
        entry["sentiment"] = {"score": score, "label": "negative" if score < -0.05 else
                              "positive" if score > 0.05 else "neutral",
                              "source": "model", "chars": 40}
    return entry


def timeline(cid: str, count: int, seed: int) -> list[dict]:
    """About `count` entries of one customer, oldest first."""
    rng = random.Random(f"digest:{seed}:{cid}")
    out: list[dict] = []
    n = 0
    # Denser lately, as real customers are: a quarter of the contacts in the last month.
    starts = sorted(NOW - timedelta(days=rng.uniform(0, SPREAD_DAYS if rng.random() < 0.75
                                                      else 30)) for _ in range(count // 2))
    for start in starts:
        n += 1
        eid = f"{cid}-{n:05d}"
        kind = rng.choices(("call", "chat", "email", "social", "survey"), (35, 25, 20, 10, 10))[0]
        if kind == "call":
            payload = call_start(rng)
            out.append(_entry(cid, f"{eid}a", "call.started", start, payload, rng))
            end = start + timedelta(minutes=rng.uniform(2, 40))
            ended = {"call_id": payload["call_id"], **call_end_fields(rng)}
            if rng.random() < 0.5:
                ended |= {k: payload[k] for k in ("intent", "ivr_path")}
            out.append(_entry(cid, f"{eid}b", "call.ended", end, ended, rng))
            contact = Contact(payload["call_id"], "call", payload["agent_id"], payload["queue"],
                              payload["intent"] if rng.random() < 0.5 else None)
        elif kind == "chat":
            payload = chat_start(rng, now=start)
            out.append(_entry(cid, f"{eid}a", "chat.started", start, payload, rng))
            end = start + timedelta(minutes=rng.uniform(2, 30))
            out.append(_entry(cid, f"{eid}b", "chat.ended", end,
                              {"chat_id": payload["chat_id"], **chat_end_fields(rng, now=end)},
                              rng))
            contact = Contact(payload["chat_id"], "chat", payload["agent_id"], payload["queue"])
        elif kind == "email":
            event_type, payload = email_payload(rng)
            out.append(_entry(cid, eid, event_type, start, payload, rng))
            contact = Contact(payload[CONTACT_IDS["email"]], "email", payload["agent_id"], None)
        elif kind == "social":
            event_type, payload = social_payload(rng, None)
            out.append(_entry(cid, eid, event_type, start, payload, rng))
            continue
        else:
            event_type, payload = survey_payload(rng, None, 0.3)
            out.append(_entry(cid, eid, event_type, start, payload, rng))
            continue
        if rng.random() < 0.35:  # a survey of the contact, within two hours of its start
            event_type, payload = survey_payload(rng, contact, 0.3)
            out.append(_entry(cid, f"{eid}s", event_type,
                              start + timedelta(minutes=rng.uniform(45, 120)), payload, rng))
    return out


def _new(entry: dict) -> NewEntry:
    moment = datetime.fromisoformat(entry["occurred_at"].replace("Z", "+00:00"))
    return NewEntry(entry["customer_id"], entry["event_id"], int(moment.timestamp() * 1000),
                    orjson.dumps(entry), entry["source"], entry)  # type: ignore[arg-type]


def _store(redis: Redis, keys: Keys, config: AgentConfig, *, max_entries: int = 1000,
           max_age_days: int = 400) -> TimelineStore:
    return TimelineStore(redis, keys, max_entries=max_entries, max_age_days=max_age_days,
                         relevance=config.relevance)


def _alerts(entries: list[dict], rng: random.Random) -> list[dict]:
    """Open (and one resolved) alerts on bottom-2-box surveys, old ones too."""
    surveys = [e for e in entries if e["channel"] == "survey" and e["payload"]["score"] <= 2]
    by_channel_id = {e["payload"].get(CONTACT_IDS.get(e["channel"], "")): e for e in entries}
    out = []
    for n, survey in enumerate(rng.sample(surveys, min(4, len(surveys)))):
        rated_id = survey["payload"].get("contact_id")
        rated = by_channel_id.get(rated_id)
        alert = {"alert_id": f"AL-{survey['event_id']}", "kind": "bottom_2_box",
                 "status": "resolved" if n == 3 else ("open", "acknowledged", "escalated")[n],
                 "version": 1, "score": survey["payload"]["score"], "scale_min": 1,
                 "scale_max": 5, "raised_at": f"2026-11-2{n}T10:00:00.000Z",
                 "comment": survey["payload"]["comment"], "category": "skill",
                 "survey_event_id": survey["event_id"], "contact_id": rated_id,
                 "rated_contact": rated if n != 1 else None, "customer_id":
                 survey["customer_id"]}
        if n == 2:
            # Without the field the digest's script reads an alert's head up to: its
            # entries are found by the second round trip instead.
            del alert["rated_contact"]
        out.append(alert)
    return out


def _services(store: TimelineStore, config: AgentConfig, alerts: AlertStore) -> Any:
    async def own_words(cids: list[str], limit: int) -> list[Any]:
        return [SimpleNamespace(notes=[], preferences=None) for _ in cids]

    return SimpleNamespace(
        agent_config=config, timelines=store, alerts=alerts,
        self_service=SimpleNamespace(own_words=own_words),
        metrics=SimpleNamespace(context_seconds=SimpleNamespace(observe=lambda _: None)))


def _contact(cid: str, intent: str, n: int) -> dict:
    rng = random.Random(n)
    payload = call_start(rng, intent=intent)
    return _entry(cid, f"{cid}-live-{n}", "call.started", NOW - timedelta(seconds=5), payload,
                  rng)


async def _same_context(services: Any, config: AgentConfig, entries: list[dict],
                        alerts: list[dict], cid: str, intent: str | None,
                        contact: dict | None, limit: int, now_ms: int = NOW_MS) -> int:
    """Asserts the digest's context is the whole timeline's; the events it shows."""
    digest = await agent_context(services, cid, intent=intent, contact=contact, limit=limit)
    full = build_context(
        customer_id=cid, profile=None, entries=entries, alerts=alerts, intent=intent,
        contact=contact, config=config, now_ms=now_ms, limit=limit, notes=[],
        preferences=None)
    where = (cid, intent, contact is not None, limit)
    for field in COMPARED:
        assert digest[field] == full[field], (where, field)
    assert digest["counts"]["relevant"] == full["counts"]["relevant"] \
        or full["counts"]["relevant"] > INDEX_CAP, where
    assert full["counts"]["total"] <= digest["counts"]["total"] <= len(entries), where
    return len(digest["events"])


def test_the_digest_context_is_the_whole_timeline_context(
        stack: LocalStack, config: AgentConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_view.time, "time", lambda: NOW_MS / 1000)
    customers = [f"C-dg{n}" for n in range(6)]
    rng = random.Random(5)

    async def main() -> list[tuple[str, Any, int]]:
        redis = Redis.from_url(stack.settings.redis_url)
        store = _store(redis, Keys(f"dg{uuid.uuid4().hex[:6]}"), config)
        alerts: dict[str, list[dict]] = {}
        alert_store = AlertStore(redis, store.keys, counters_ttl_days=1)
        sizes = {cid: (1000, 1000, 1000, 1000, 150, 40)[n] for n, cid in enumerate(customers)}
        for cid in customers:
            entries = timeline(cid, sizes[cid], 1)
            for start in range(0, len(entries), 400):
                await store.add_entries([_new(e) for e in entries[start:start + 400]])
            alerts[cid] = _alerts(entries, rng)
            await alert_store.put_new(alerts[cid], NOW_MS, 3_600_000)  # type: ignore[arg-type]
        # Two timelines as stored before the survey index existed: their surveys are
        # found by scanning, the others' from the index.
        for cid in UNINDEXED:
            await redis.delete(store.keys.survey_index(cid))
        marked = [await redis.zscore(store.keys.survey_index(cid), SURVEYS_COMPLETE)
                  for cid in customers]
        assert [m is not None for m in marked] == [c not in UNINDEXED for c in customers]
        services = _services(store, config, alert_store)
        checked: list[tuple[str, Any, int]] = []
        live = 0
        try:
            for cid in customers:
                for intent in (None, "billing", "technical", "delivery", "cancellation",
                               "account"):
                    for taking in (False, True):
                        contact = None
                        if taking:  # the live flow: the contact is stored, then pushed
                            live += 1
                            contact = _contact(cid, intent or "sales", live)
                            await store.add_entries([_new(contact)])
                        entries = await store.read(cid)
                        for limit in (30, 8, INDEX_CAP - 1):
                            shown = await _same_context(services, config, entries, alerts[cid],
                                                        cid, intent, contact, limit)
                            checked.append((cid, intent, shown))
        finally:
            await redis.aclose()
        return checked

    checked = asyncio.run(main())
    assert len(checked) == 6 * 6 * 2 * 3
    assert all(shown > 0 for _, _, shown in checked)


def test_a_lean_digest_short_of_relevant_contacts_is_read_again_in_full(
        stack: LocalStack, config: AgentConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    # A timeline at its entry bound keeps index members whose entries it dropped: the
    # index promises a page of relevant contacts that a lean read does not find.  With
    # nothing in the last days, a lean core is only the newest contact, so the newest
    # other contacts the page then shows are not there either.
    later = NOW_MS + 10 * 86_400_000
    monkeypatch.setattr(agent_view.time, "time", lambda: later / 1000)

    async def main() -> tuple[list[bool], int]:
        redis = Redis.from_url(stack.settings.redis_url)
        store = _store(redis, Keys(f"dl{uuid.uuid4().hex[:6]}"), config, max_entries=150)
        alert_store = AlertStore(redis, store.keys, counters_ttl_days=1)
        leans: list[bool] = []
        read = store.digest.read_with_alerts

        async def noting(*args: Any, **kwargs: Any) -> Any:
            digest, alerts = await read(*args, **kwargs)
            leans.append(digest.lean)
            return digest, alerts

        monkeypatch.setattr(store.digest, "read_with_alerts", noting)
        try:
            entries = timeline("C-dl", 1000, 3)
            for start in range(0, len(entries), 100):
                await store.add_entries([_new(e) for e in entries[start:start + 100]])
            services = _services(store, config, alert_store)
            stored = await store.read("C-dl")
            shown = 0
            for intent in ("billing", "technical", "delivery", "cancellation", "account"):
                for limit in (30, 8):
                    shown += await _same_context(services, config, stored, [], "C-dl",
                                                 intent, None, limit, later)
            return leans, shown
        finally:
            await redis.aclose()

    leans, shown = asyncio.run(main())
    # A lean read followed by a full one: the page was short of relevant contacts.
    assert any(a and not b for a, b in itertools.pairwise(leans)), leans
    assert shown > 0


def test_the_digest_reads_a_fraction_of_a_long_timeline_and_erasure_takes_the_index(
        stack: LocalStack, config: AgentConfig) -> None:
    async def main() -> tuple[int, int, int, list[bytes], list[bytes]]:
        redis = Redis.from_url(stack.settings.redis_url)
        keys = Keys(f"dh{uuid.uuid4().hex[:6]}")
        store = _store(redis, keys, config)
        try:
            entries = timeline("C-dh", 1000, 2)
            await store.add_entries([_new(e) for e in entries])
            digest = await store.digest.read(
                "C-dh", "billing", since_ms=NOW_MS - 7 * 86_400_000,
                surveys_since_ms=NOW_MS - 30 * 86_400_000, newest=100,
                margin_ms=agent_view.DIGEST_MARGIN_MS, most=1000)
            indexed = await redis.zcard(keys.intent_index("C-dh", "billing"))
            await store.erase("C-dh")
            left = [k async for k in redis.scan_iter(f"{keys.prefix}:{{C-dh}}*")]
            # A timeline emptied by a move (a merge) takes its index along.
            await store.add_entries([_new(e) for e in entries[:50]])
            await store.drop_entries("C-dh", [e["event_id"] for e in entries[:50]])
            after_move = [k async for k in redis.scan_iter(f"{keys.prefix}:{{C-dh}}*")]
            return len(digest.entries), digest.total - len(entries), indexed, left, after_move
        finally:
            await redis.aclose()

    read, short, indexed, left, after_move = asyncio.run(main())
    assert short == 0 and read < 1000 / 2, (read, short)
    assert INDEX_CAP <= indexed <= 2 * INDEX_CAP  # cut to the cap now and then, not always
    assert left == [] and after_move == []



def test_the_survey_index_holds_every_survey_of_a_timeline_begun_with_it(
        stack: LocalStack, config: AgentConfig) -> None:
    async def main() -> dict[str, Any]:
        redis = Redis.from_url(stack.settings.redis_url)
        keys = Keys(f"ds{uuid.uuid4().hex[:6]}")
        store = _store(redis, keys, config, max_entries=150)
        try:
            entries = timeline("C-ds", 1000, 4)
            for start in range(0, len(entries), 100):  # oldest first: most are trimmed
                await store.add_entries([_new(e) for e in entries[start:start + 100]])
            kept = await store.read("C-ds")
            index = dict(await redis.zrange(keys.survey_index("C-ds"), 0, -1,
                                            withscores=True))
            # A timeline stored before the index: a new survey gives it an index that
            # does not say it is complete.
            await store.add_entries([_new({**e, "customer_id": "C-old"})
                                     for e in entries[:40] if e["channel"] != "survey"])
            await redis.delete(keys.survey_index("C-old"))
            older = next(e for e in entries[40:] if e["channel"] == "survey")
            await store.add_entries([_new({**older, "customer_id": "C-old"})])
            old_index = await redis.zrange(keys.survey_index("C-old"), 0, -1)
            # Retention by age trims the index with the timeline.
            young = _store(redis, keys, config, max_entries=150, max_age_days=5)
            await young.add_entries([_new(_contact("C-ds", "billing", 1))])
            aged = dict(await redis.zrange(keys.survey_index("C-ds"), 0, -1,
                                           withscores=True))
            return {"kept": kept, "index": index, "old_index": old_index, "aged": aged,
                    "older": older["event_id"]}
        finally:
            await redis.aclose()

    got = asyncio.run(main())
    surveys = {e["event_id"].encode() for e in got["kept"] if e["channel"] == "survey"}
    index = got["index"]
    assert surveys and set(index) == surveys | {SURVEYS_COMPLETE.encode()}
    assert index[SURVEYS_COMPLETE.encode()] == float("inf")
    assert got["old_index"] == [got["older"].encode()]
    aged = got["aged"]
    assert aged[SURVEYS_COMPLETE.encode()] == float("inf")
    assert min(aged.values()) >= NOW_MS - 5 * 86_400_000 - 600_000, min(aged.values())
    assert 1 < len(aged) < len(index)
