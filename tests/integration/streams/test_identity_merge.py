"""Merges, unmerges, shared identifiers, confirmation and erasure on the real Redis, batches
fed to the worker's pipeline by hand (the Kafka path is in test_identity_worker.py, the
kill in tests/slow/test_identity_crash_slow.py)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import orjson
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from redis.asyncio import Redis as AsyncRedis

from cxt.localstack import LocalStack
from domain.relevance import load_relevance
from domain.rules import DEFAULT_RULES_PATH, load_rules
from kernel.settings import Settings
from store.alerts import AlertStore
from store.keys import Keys
from store.timeline import TimelineStore
from streams.processor import Processor
from streams.records import Outgoing, Record
from tests.support.helpers import b2b_survey, envelope, isolated

T = TypeVar("T")
_offsets = itertools.count(1)


def _run(settings: Settings, scenario: Callable[[Processor], Awaitable[T]]) -> T:
    async def main() -> T:
        client = AsyncRedis.from_url(settings.redis_url)
        keys = Keys(settings.redis_prefix)
        processor = Processor(
            settings, TimelineStore(client, keys, max_entries=settings.timeline_max_entries,
                                    max_age_days=400,
                                    # The intent index too, moved and erased with the rest.
                                    relevance=load_relevance(settings.agent_context_path)),
            AlertStore(client, keys, counters_ttl_days=400), load_rules(DEFAULT_RULES_PATH))
        try:
            return await scenario(processor)
        finally:
            await client.aclose()
    return asyncio.run(main())


def _customer(settings: Settings, cid: str, **fields: Any) -> Record:
    value = orjson.dumps({"customer_id": cid, **fields})
    return Record(settings.topics.customers, 0, next(_offsets), cid.encode(), value)


def _tombstone(settings: Settings, cid: str) -> Record:
    return Record(settings.topics.customers, 0, next(_offsets), cid.encode(), None)


def _event(settings: Settings, channel: str, event: dict) -> Record:
    return Record(settings.topics.for_channel(channel), 0, next(_offsets), None,
                  orjson.dumps(event))


async def _ids(p: Processor, cid: str) -> list[str]:
    return [e["event_id"] for e in await p.store.read(cid)]


def _topic(out: list[Outgoing], topic: str) -> list[dict]:
    return [orjson.loads(m.value) for m in out if m.topic == topic and m.value is not None]


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def test_merge_moves_everything_later_events_follow_and_unmerge_gives_it_back(
        stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    one, two = f"C-{_uid()}", f"C-{_uid()}"
    phone = f"+4420{uuid.uuid4().int % 10**7:07d}"

    async def scenario(p: Processor) -> dict:
        await p.customers([_customer(settings, one, identifiers={"phones": [phone]}),
                           _customer(settings, two)])
        await p.interactions([_event(settings, "call", envelope("call", one, event_id=f"{one}-a")),
                              _event(settings, "chat", envelope("chat", two, event_id=f"{two}-a")),
                              _event(settings, "survey", b2b_survey(one, "rude"))])
        before = {one: await _ids(p, one), two: await _ids(p, two)}
        merged = await p.customers([_customer(settings, one, merged_into=two,
                                              identifiers={"phones": [phone]})])
        during = {one: await _ids(p, one), two: await _ids(p, two),
                  "alerts_two": [a["customer_id"] for a in await p.alerts.of_customer(two)]}
        # Arriving while merged: by customer id and by C-1's phone; both filed under C-2.
        late = await p.interactions([
            _event(settings, "email", envelope("email", one, event_id=f"{one}-late")),
            _event(settings, "call", envelope("call", identity={"phone": phone},
                                              event_id=f"{one}-phone"))])
        stored = {e["event_id"]: e for e in await p.store.read(two)}
        unmerged = await p.customers([_customer(settings, one, identifiers={"phones": [phone]})])
        after = {one: await _ids(p, one), two: await _ids(p, two),
                 "alerts_one": [a["customer_id"] for a in await p.alerts.of_customer(one)]}
        return {"before": before, "merged": merged, "during": during, "late": late,
                "stored": stored, "unmerged": unmerged, "after": after}

    got = _run(settings, scenario)
    before, during, after = got["before"], got["during"], got["after"]
    assert during[one] == []
    assert sorted(during[two]) == sorted(before[one] + before[two])
    assert during["alerts_two"] == [two]
    events = _topic(got["merged"], settings.topics.identity)
    assert [(e["event"], e["into"], e["moved"]) for e in events] == [
        ("merged", two, {"entries": 2, "alerts": 1})]
    moved = _topic(got["merged"], settings.topics.timeline)
    assert {e["customer_id"] for e in moved} == {two} and len(moved) == 2
    assert {e["filed_under"] for e in moved} == {one}
    assert [a["customer_id"] for a in _topic(got["merged"], settings.topics.alerts)] == [two]
    stored = got["stored"]
    assert stored[f"{one}-late"]["filed_under"] == one
    assert stored[f"{one}-phone"]["filed_under"] == one
    assert {e["customer_id"] for e in _topic(got["late"], settings.topics.timeline)} == {two}
    assert sorted(after[one]) == sorted(before[one] + [f"{one}-late", f"{one}-phone"])
    assert after[two] == before[two]
    assert after["alerts_one"] == [one]
    assert [e["event"] for e in _topic(got["unmerged"], settings.topics.identity)] == [
        "unmerged"]


def test_merges_chain_and_a_cycle_is_dead_lettered(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    a, b, c = (f"C-{_uid()}" for _ in range(3))

    async def scenario(p: Processor) -> tuple:
        await p.customers([_customer(settings, x) for x in (a, b, c)])
        await p.interactions([_event(settings, "call", envelope("call", x, event_id=f"{x}-1"))
                              for x in (a, b, c)])
        await p.customers([_customer(settings, a, merged_into=b)])
        await p.customers([_customer(settings, b, merged_into=c)])
        late = await p.interactions([_event(settings, "call",
                                            envelope("call", a, event_id=f"{a}-2"))])
        cycle = await p.customers([_customer(settings, c, merged_into=a)])
        itself = await p.customers([_customer(settings, c, merged_into=c)])
        in_c = {e["event_id"]: e.get("filed_under") for e in await p.store.read(c)}
        # Unmerge b: b and a (still merged into b) come back to b.
        await p.customers([_customer(settings, b)])
        return (late, cycle, itself, in_c, await _ids(p, b), await _ids(p, c),
                {e["event_id"]: e.get("filed_under") for e in await p.store.read(b)})

    late, cycle, itself, in_c, in_b, left_c, filed_b = _run(settings, scenario)
    assert _topic(late, settings.topics.timeline)[0]["customer_id"] == c
    assert in_c == {f"{a}-1": a, f"{b}-1": b, f"{c}-1": None, f"{a}-2": a}
    for out in (cycle, itself):
        (dead,) = _topic(out, settings.topics.deadletter)
        assert dead["reason"] == "merge_cycle", dead
    assert sorted(in_b) == sorted([f"{a}-1", f"{b}-1", f"{a}-2"])
    assert filed_b == {f"{a}-1": a, f"{b}-1": None, f"{a}-2": a}
    assert left_c == [f"{c}-1"]


def test_a_shared_identifier_is_not_guessed_and_the_agent_confirms(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    one, two = f"C-{_uid()}", f"C-{_uid()}"
    landline, mail = "+442079460001", f"{_uid()}@example.com"

    async def scenario(p: Processor) -> tuple:
        await p.customers([
            _customer(settings, one, identifiers={"phones": [landline], "emails": [mail]}),
            _customer(settings, two, identifiers={"phones": [landline]})])
        call_id = f"K-{_uid()}"
        only_phone = envelope("call", identity={"phone": landline}, event_id=f"amb-{_uid()}",
                              call_id=call_id)
        ended = envelope("call", identity={"phone": landline}, event_id=f"end-{_uid()}",
                         event_type="call.ended", call_id=call_id)
        with_mail = envelope("call", identity={"phone": landline, "email": mail},
                             event_id=f"mail-{_uid()}")
        out = await p.interactions([_event(settings, "call", only_phone),
                                    _event(settings, "call", with_mail)])
        await p.interactions([_event(settings, "call", ended)])
        profile = f"~?phone:{landline}"
        held = await _ids(p, profile)
        confirm = Record(settings.topics.identity_actions, 0, next(_offsets), profile.encode(),
                         orjson.dumps({"action": "confirm", "profile_id": profile,
                                       "event_id": only_phone["event_id"], "customer_id": two,
                                       "actor": "A-007", "action_id": "x1"}))
        confirmed = await p.identity_actions([confirm])
        stranger = f"C-{_uid()}"
        await p.customers([_customer(settings, stranger)])
        bad = await p.identity_actions([Record(
            settings.topics.identity_actions, 0, next(_offsets), None,
            orjson.dumps({"action": "confirm", "profile_id": profile, "event_id": event_id,
                          "customer_id": who, "actor": "A-007"})) for event_id, who in
            (("nope", two), (only_phone["event_id"], stranger))])
        return (out, held, confirmed, bad, await _ids(p, profile), await _ids(p, one),
                await p.store.read(two), only_phone["event_id"], with_mail["event_id"],
                ended["event_id"])

    out, held, confirmed, bad, left, of_one, of_two, amb, by_mail, end = _run(settings, scenario)
    assert sorted(held) == sorted([amb, end])
    (event,) = _topic(out, settings.topics.identity)
    assert event["event"] == "ambiguous" and event["candidates"] == sorted([one, two])
    assert of_one == [by_mail]  # the e-mail in the same event decided
    # Confirming the call's start files its end too: one contact, one caller.
    assert sorted(e["event_id"] for e in of_two) == sorted([amb, end]) and left == []
    assert {e["linked_from"] for e in of_two} == {f"~?phone:{landline}"}
    assert [e["event"] for e in _topic(confirmed, settings.topics.identity)] == ["confirmed"]
    assert [d["reason"] for d in _topic(bad, settings.topics.deadletter)] == [
        "unknown_event", "not_a_candidate"]


def test_never_match_identifiers_and_every_identifier_counts(stack: LocalStack) -> None:
    settings = replace(isolated(stack.settings),
                       identity_never_match=("phone:+442070000000", "email:noreply@*"))
    cid = f"C-{_uid()}"
    mail = f"{_uid()}@example.com"

    async def scenario(p: Processor) -> tuple:
        await p.customers([_customer(settings, cid, identifiers={
            "phones": ["+442070000000"], "emails": ["noreply@example.com"]})])
        switchboard = envelope("call", identity={"phone": "+442070000000"})
        # Unknown phone first, unknown e-mail second: claiming the e-mail links it.
        two_unknown = envelope("call", identity={"phone": "+447700900123", "email": mail})
        await p.interactions([_event(settings, "call", switchboard),
                              _event(settings, "call", two_unknown)])
        linked = await p.customers([_customer(settings, cid, identifiers={
            "phones": ["+442070000000"], "emails": ["noreply@example.com", mail]})])
        return (await _ids(p, cid), await _ids(p, "~phone:+447700900123"), linked,
                switchboard["event_id"], two_unknown["event_id"])

    of_customer, provisional, linked, _, two_unknown = _run(settings, scenario)
    assert of_customer == [two_unknown]  # not the switchboard call
    assert provisional == []
    assert [e["event_id"] for e in _topic(linked, settings.topics.timeline)] == [two_unknown]


def test_erasing_a_merged_customer_erases_every_part(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    one, two = f"C-{_uid()}", f"C-{_uid()}"

    async def scenario(p: Processor) -> tuple:
        await p.customers([_customer(settings, one, identifiers={"emails": [f"{one}@x.org"]}),
                           _customer(settings, two, identifiers={"emails": [f"{two}@x.org"]})])
        await p.interactions([_event(settings, "survey", b2b_survey(one, "awful")),
                              _event(settings, "chat", envelope("chat", two))])
        await p.customers([_customer(settings, one, merged_into=two,
                                     identifiers={"emails": [f"{one}@x.org"]})])
        out = await p.customers([_tombstone(settings, two)])
        keys = [k.decode() async for k in p.store.redis.scan_iter(f"{settings.redis_prefix}:*")]
        values = [await p.store.redis.get(k) for k in keys
                  if (await p.store.redis.type(k)) == b"string"]
        return out, keys, values

    out, keys, values = _run(settings, scenario)
    assert not [k for k in keys if one in k or two in k], keys
    assert not [v for v in values if v and (one.encode() in v or two.encode() in v)]
    tombstoned = {(m.topic, m.key) for m in out if m.value is None}
    for cid in (one, two):
        for topic in (settings.topics.timeline, settings.topics.alerts, settings.topics.identity):
            assert (topic, cid.encode()) in tombstoned


# -- the property: merge then unmerge gives the timelines back exactly -----------------

_channels = st.sampled_from(["call", "chat", "email", "survey", "social"])
_history = st.lists(st.tuples(st.sampled_from([0, 1, 2]), _channels,
                              st.integers(0, 10**6)), min_size=0, max_size=25)


@hsettings(max_examples=25, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=_history, during=_history, chain=st.booleans())
def test_merge_then_unmerge_restores_every_timeline(stack: LocalStack, history: list,
                                                     during: list, chain: bool) -> None:
    """Random histories across channels for three customers; customer 0 merged into 1
    (and 1 into 2 when `chain`), interactions arriving meanwhile, then every merge taken
    back: each timeline holds exactly its own entries, byte for byte."""
    settings = isolated(stack.settings)
    cids = [f"C-{_uid()}" for _ in range(3)]

    def records(items: list, tag: str) -> list[Record]:
        out = []
        for n, (who, channel, second) in enumerate(items):
            at = f"2026-11-{1 + second % 28:02d}T{second % 24:02d}:00:{second % 60:02d}Z"
            event = envelope(channel, cids[who], event_id=f"{tag}{n}-{cids[who]}",
                             occurred_at=at)
            out.append(_event(settings, channel, event))
        return out

    async def scenario(p: Processor) -> tuple[dict, dict, dict]:
        await p.customers([_customer(settings, c) for c in cids])
        if history:
            await p.interactions(records(history, "h"))
        original = {c: await p.store.read(c) for c in cids}
        await p.customers([_customer(settings, cids[0], merged_into=cids[1])])
        if chain:
            await p.customers([_customer(settings, cids[1], merged_into=cids[2])])
        if during:
            await p.interactions(records(during, "d"))
        arrived = {c: [e["event_id"] for e in await p.store.read(c)] for c in cids}
        if chain:
            await p.customers([_customer(settings, cids[1])])
        await p.customers([_customer(settings, cids[0])])
        return original, arrived, {c: await p.store.read(c) for c in cids}

    original, arrived, final = _run(settings, scenario)
    root = cids[2] if chain else cids[1]
    assert all(not arrived[c] for c in cids if c != root and (c == cids[0] or chain))
    for n, c in enumerate(cids):
        mine = {e["event_id"] for e in final[c]}
        late = {f"d{i}-{c}" for i, (who, _, _) in enumerate(during) if who == n}
        assert mine == {e["event_id"] for e in original[c]} | late
        kept = [e for e in final[c] if not e["event_id"].startswith("d")]
        assert orjson.dumps(sorted(kept, key=lambda e: e["event_id"])) == orjson.dumps(
            sorted(original[c], key=lambda e: e["event_id"]))
        assert all("filed_under" not in e for e in final[c])
