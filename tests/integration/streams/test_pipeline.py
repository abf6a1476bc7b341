"""End to end on the real broker and Redis: topic -> worker -> timeline in Redis and on Kafka."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cxt.localstack import LocalStack
from domain.alerts import alert_id_for
from kernel.settings import CHANNELS, Settings
from tests.support.helpers import (
    create_topics,
    envelope,
    eventually,
    produce,
    produce_events,
    read_topic,
)
from tests.support.helpers import isolated as isolated_settings
from tests.support.processes import WorkerProcess, run_cxt
from usecases.timeline import read_timeline


@pytest.fixture(scope="module")
def pipeline(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Settings, WorkerProcess]]:
    """A worker on its own topics, consuming; yields (settings, worker)."""
    settings = isolated_settings(stack.settings)
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(settings, tmp_path_factory.mktemp("worker")).start()
    try:
        asyncio.run(_wait_until_consuming(settings, worker))
        yield settings, worker
    finally:
        worker.stop()


async def _wait_until_consuming(settings: Settings, worker: WorkerProcess) -> None:
    probe = envelope("call", f"warmup-{uuid.uuid4().hex[:6]}")
    await produce_events(settings, [probe])
    found = await eventually(lambda: _timeline(settings, probe["customer_id"]), timeout=90)
    assert found, f"worker never stored the warm-up event:\n{worker.log()}"


async def _timeline(settings: Settings, customer_id: str, **filters: object) -> list[dict]:
    return (await read_timeline(settings, customer_id, **filters))["events"]  # type: ignore[arg-type]


async def _wait_for_entries(settings: Settings, customer_id: str, count: int,
                            timeout: float = 20) -> list[dict]:
    async def enough() -> list[dict] | None:
        events = await _timeline(settings, customer_id)
        return events if len(events) >= count else None

    found = await eventually(enough, timeout=timeout)
    return found or await _timeline(settings, customer_id)  # type: ignore[return-value]


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def test_each_channel_reaches_the_timeline_and_the_output_topic(pipeline) -> None:
    settings, worker = pipeline
    cid = _customer()
    events = [
        envelope("call", cid, occurred_at="2026-11-20T09:00:00Z", intent="billing",
                 ivr_path=["main", "billing"], queue="billing-uk", agent_id="A-1"),
        envelope("chat", cid, occurred_at="2026-11-20T10:30:00+01:00", messages=12),
        envelope("email", cid, occurred_at="2026-11-20T11:00:00Z", subject="Refund",
                 direction="inbound"),
        envelope("survey", cid, occurred_at="2026-11-20T12:00:00Z", score=2, comment="slow"),
        envelope("social", cid, occurred_at="2026-11-20T13:00:00Z", network="x",
                 text="meh", public=True, extra_field={"kept": True}),
    ]
    asyncio.run(produce_events(settings, events))

    stored = asyncio.run(_wait_for_entries(settings, cid, 5))
    assert [e["channel"] for e in stored] == ["social", "survey", "email", "chat", "call"]
    by_id = {e["event_id"]: e for e in stored}
    for sent in events:
        entry = by_id[sent["event_id"]]
        assert entry["customer_id"] == cid
        assert entry["type"] == sent["type"]
        assert entry["occurred_at"] == sent["occurred_at"]
        assert entry["payload"] == sent["payload"]  # unknown fields kept
        assert entry["accepted_at"].endswith("Z")
        assert entry["source"]["topic"] == settings.topics.for_channel(entry["channel"])

    published = asyncio.run(read_topic(
        settings, settings.topics.timeline,
        until=lambda ms: sum(m.key == cid.encode() for m in ms) >= 5))
    mine = [orjson.loads(m.value) for m in published if m.key == cid.encode()]
    assert sorted(e["event_id"] for e in mine) == sorted(by_id)
    worker.assert_alive()


def test_cli_reads_the_timeline_with_filters(pipeline) -> None:
    settings, _ = pipeline
    cid = _customer()
    events = [envelope(ch, cid, occurred_at=f"2026-11-2{i}T08:00:00Z")
              for i, ch in enumerate(CHANNELS)]
    asyncio.run(produce_events(settings, events))
    asyncio.run(_wait_for_entries(settings, cid, 5))

    full = run_cxt(settings, "timeline", cid, "--json")
    assert full.returncode == 0, full.stderr
    body = orjson.loads(full.stdout)
    assert body["customer_id"] == cid
    assert [e["occurred_at"][:10] for e in body["events"]] == [
        "2026-11-24", "2026-11-23", "2026-11-22", "2026-11-21", "2026-11-20"]

    survey = orjson.loads(
        run_cxt(settings, "timeline", cid, "--json", "--channel", "survey").stdout)
    assert [e["channel"] for e in survey["events"]] == ["survey"]
    window = orjson.loads(run_cxt(settings, "timeline", cid, "--json", "--since",
                               "2026-11-21T00:00:00Z", "--until", "2026-11-23T00:00:00Z",
                               "--limit", "1").stdout)
    assert [e["occurred_at"] for e in window["events"]] == ["2026-11-22T08:00:00Z"]

    table = run_cxt(settings, "timeline", cid)
    assert table.returncode == 0 and "5 entries, newest first" in table.stdout

    bad = run_cxt(settings, "timeline", cid, "--since", "yesterday")
    assert bad.returncode == 2 and "yesterday" in bad.stderr and "Traceback" not in bad.stderr


def test_duplicates_give_one_entry_and_one_publication(pipeline) -> None:
    settings, _ = pipeline
    cid = _customer()
    first = envelope("call", cid, event_id=f"dup-{uuid.uuid4().hex}", intent="billing")
    again = dict(first, payload={"intent": "changed"})  # same event_id, other content
    marker = envelope("chat", cid, occurred_at="2026-11-23T00:00:00Z")
    asyncio.run(produce_events(settings, [first, first, again]))
    asyncio.run(produce_events(settings, [marker]))

    stored = asyncio.run(_wait_for_entries(settings, cid, 2))
    assert sorted(e["event_id"] for e in stored) == sorted([first["event_id"], marker["event_id"]])
    assert next(e for e in stored if e["event_id"] == first["event_id"])["payload"] == {
        "intent": "billing"}
    published = asyncio.run(read_topic(
        settings, settings.topics.timeline,
        until=lambda ms: any(m.key == cid.encode() and orjson.loads(m.value)["event_id"]
                             == marker["event_id"] for m in ms)))
    ids = [orjson.loads(m.value)["event_id"] for m in published if m.key == cid.encode()]
    assert ids.count(first["event_id"]) == 1


def test_out_of_order_arrivals_read_back_in_occurred_at_order(pipeline) -> None:
    settings, _ = pipeline
    cid = _customer()
    times = [f"2026-11-{d:02d}T{h:02d}:30:00Z" for d in range(1, 11) for h in (3, 17)]
    shuffled = times[:]
    random.Random(4).shuffle(shuffled)
    asyncio.run(produce_events(settings, [envelope("chat", cid, occurred_at=t) for t in shuffled]))
    stored = asyncio.run(_wait_for_entries(settings, cid, len(times)))
    assert [e["occurred_at"] for e in stored] == sorted(times, reverse=True)


BAD_INPUTS: list[tuple[str, bytes | None, str]] = [
    ("call", b"{not json", "invalid_json"),
    ("call", b"\xff\xfe\x00garbage", "invalid_json"),
    ("chat", b"[1, 2, 3]", "not_an_object"),
    ("email", orjson.dumps({"event_id": "x", "type": "email.received", "customer_id": "C-1"}),
     "schema_violation"),
    ("chat", orjson.dumps(envelope("call", "C-1")), "channel_mismatch"),
    ("call", orjson.dumps(envelope("call", "C-1", occurred_at="2026-13-45T99:00:00Z")),
     "invalid_timestamp"),
    ("call", orjson.dumps({k: v for k, v in envelope("call", "C-1").items()
                           if k != "customer_id"}), "no_customer"),
    ("survey", orjson.dumps(envelope("survey", "C-1", score=9)), "score_out_of_scale"),
    ("social", orjson.dumps(envelope("social", "C-1", text="x" * 300_000)), "too_large"),
]


def test_bad_input_is_dead_lettered_while_good_events_flow(pipeline) -> None:
    settings, worker = pipeline
    cid = _customer()
    tag = uuid.uuid4().hex[:8].encode()
    for i, (channel, value, _) in enumerate(BAD_INPUTS):
        good = envelope(channel, cid, occurred_at=f"2026-11-10T10:{i:02d}:00Z")
        asyncio.run(produce(settings, settings.topics.for_channel(channel),
                            [(tag + b"-%d" % i, value), (cid.encode(), orjson.dumps(good))]))

    stored = asyncio.run(_wait_for_entries(settings, cid, len(BAD_INPUTS)))
    assert len(stored) == len(BAD_INPUTS)

    letters = asyncio.run(read_topic(
        settings, settings.topics.deadletter,
        until=lambda ms: sum(bool(m.key and m.key.startswith(tag)) for m in ms)
        >= len(BAD_INPUTS)))
    mine = {m.key: orjson.loads(m.value) for m in letters if m.key and m.key.startswith(tag)}
    for i, (channel, value, reason) in enumerate(BAD_INPUTS):
        letter = mine[tag + b"-%d" % i]
        assert letter["reason"] == reason, letter["message"]
        assert letter["message"]
        assert letter["topic"] == settings.topics.for_channel(channel)
        assert base64.b64decode(letter["original"]) == (value or b"")
        assert isinstance(letter["offset"], int) and isinstance(letter["partition"], int)
        assert letter["rejected_at"]
    worker.assert_alive()


def test_identity_resolution_and_late_linking(pipeline) -> None:
    settings, _ = pipeline
    known, late = _customer(), _customer()
    known_phone = f"+4477{random.randrange(10**8):08d}"
    late_email = f"{uuid.uuid4().hex[:8]}@example.org"
    record = {"customer_id": known, "name": "Ada", "identifiers": {"phones": [known_phone]},
              "segment": "consumer"}
    asyncio.run(produce(settings, settings.topics.customers,
                        [(known.encode(), orjson.dumps(record))]))
    by_phone = envelope("call", identity={"phone": known_phone}, intent="billing")

    async def resolved() -> list[dict]:
        await produce_events(settings, [dict(by_phone, event_id=uuid.uuid4().hex)])
        return await _timeline(settings, known)

    # The record and the event travel on different topics; retry until the record landed.
    assert asyncio.run(eventually(resolved, timeout=20, interval=1))

    # An unknown identity waits in a provisional profile ...
    unknown = envelope("email", identity={"email": late_email.upper()}, subject="Hello")
    asyncio.run(produce_events(settings, [unknown]))
    provisional = asyncio.run(_wait_for_entries(settings, f"~email:{late_email}", 1))
    assert provisional[0]["provisional"] is True
    assert provisional[0]["customer_id"] == f"~email:{late_email}"

    # ... and moves to the customer that claims it later.
    claim = {"customer_id": late, "identifiers": {"emails": [late_email]}}
    asyncio.run(produce(settings, settings.topics.customers,
                        [(late.encode(), orjson.dumps(claim))]))
    linked = asyncio.run(_wait_for_entries(settings, late, 1))
    assert linked[0]["event_id"] == unknown["event_id"]
    assert linked[0]["linked_from"] == f"~email:{late_email}"
    assert "provisional" not in linked[0]
    assert asyncio.run(_timeline(settings, f"~email:{late_email}")) == []


def test_merge_unmerge_and_confirmation_through_the_worker(pipeline) -> None:
    """Over Kafka: a merge moves the timeline and is announced on cx.identity.v1, an
    unmerge gives it back; a shared phone files a call under an ambiguous profile until
    an agent's confirmation on cx.identity-actions.v1 moves it."""
    settings, _ = pipeline
    one, two = _customer(), _customer()
    landline = f"+4420{random.randrange(10**8):08d}"

    def customer(cid: str, **fields: object) -> tuple[bytes, bytes]:
        return cid.encode(), orjson.dumps({"customer_id": cid, **fields})

    asyncio.run(produce(settings, settings.topics.customers, [
        customer(one, identifiers={"phones": [landline]}),
        customer(two, identifiers={"phones": [landline]})]))
    mine = [envelope("call", one), envelope("email", one)]
    asyncio.run(produce_events(settings, [*mine, envelope("chat", two)]))
    asyncio.run(_wait_for_entries(settings, one, 2))
    asyncio.run(produce(settings, settings.topics.customers,
                        [customer(one, merged_into=two, identifiers={"phones": [landline]})]))
    merged = asyncio.run(_wait_for_entries(settings, two, 3))
    assert {e["filed_under"] for e in merged if e.get("filed_under")} == {one}
    assert asyncio.run(_timeline(settings, one)) == []
    # Merged, the landline's claimants share one root: no longer ambiguous; by C-1's id.
    call, named = envelope("call", identity={"phone": landline}), envelope("chat", one)
    asyncio.run(produce_events(settings, [call, named]))
    assert asyncio.run(_wait_for_entries(settings, two, 5))
    asyncio.run(produce(settings, settings.topics.customers,
                        [customer(one, identifiers={"phones": [landline]})]))
    back = asyncio.run(_wait_for_entries(settings, one, 3))
    assert {e["event_id"] for e in back} == {e["event_id"] for e in mine} | {named["event_id"]}
    # The landline's call was filed under C-2's own claim: it stays there.
    assert call["event_id"] in {e["event_id"] for e in asyncio.run(_timeline(settings, two))}
    # Unmerged, the landline is shared again: the next call waits for an agent.
    shared = envelope("call", identity={"phone": landline})
    asyncio.run(produce_events(settings, [shared]))
    profile = f"~?phone:{landline}"
    assert asyncio.run(_wait_for_entries(settings, profile, 1))
    action = {"action": "confirm", "profile_id": profile, "event_id": shared["event_id"],
              "customer_id": two, "actor": "A-007", "action_id": uuid.uuid4().hex}
    asyncio.run(produce(settings, settings.topics.identity_actions,
                        [(profile.encode(), orjson.dumps(action))]))
    confirmed = asyncio.run(_wait_for_entries(settings, two, 3))
    assert shared["event_id"] in {e["event_id"] for e in confirmed}
    events = asyncio.run(read_topic(
        settings, settings.topics.identity,
        until=lambda got: {"merged", "unmerged", "ambiguous", "confirmed"} <= {
            orjson.loads(m.value)["event"] for m in got if m.value}))
    kinds = [orjson.loads(m.value)["event"] for m in events if m.value]
    assert {"claimed", "merged", "unmerged", "ambiguous", "confirmed"} <= set(kinds), kinds


def test_erasure_removes_timeline_profile_identities_and_alerts(pipeline) -> None:
    import redis

    settings, _ = pipeline
    cid = _customer()
    phone = f"+4478{random.randrange(10**8):08d}"
    record = {"customer_id": cid, "identifiers": {"phones": [phone]}}
    asyncio.run(produce(settings, settings.topics.customers,
                        [(cid.encode(), orjson.dumps(record))]))
    survey = envelope("survey", cid, score=1, comment="awful")
    asyncio.run(produce_events(settings, [envelope("call", cid), envelope("chat", cid), survey]))
    asyncio.run(_wait_for_entries(settings, cid, 3))
    client = redis.Redis.from_url(settings.redis_url)
    alert_key = f"{settings.redis_prefix}:{{{alert_id_for(survey['event_id'])}}}:alert"
    assert asyncio.run(eventually(lambda: client.exists(alert_key)))

    asyncio.run(produce(settings, settings.topics.customers, [(cid.encode(), None)]))

    def gone() -> bool:
        keys = client.keys(f"{settings.redis_prefix}:{{{cid}}}:*")
        return (not keys and client.get(f"{settings.redis_prefix}:{{phone:{phone}}}:id") is None
                and not client.exists(alert_key))

    assert asyncio.run(eventually(gone, timeout=20))
    client.close()


def test_produce_command_routes_json_lines(pipeline, tmp_path: Path) -> None:
    settings, _ = pipeline
    cid = _customer()
    lines = [orjson.dumps(envelope(ch, cid)).decode() for ch in CHANNELS] + ["{oops"]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = run_cxt(settings, "produce", str(source), "--quiet")
    assert result.returncode == 1  # one bad line is reported, the rest sent
    assert "line 6" in result.stderr and "Traceback" not in result.stderr
    assert "sent 5" in result.stdout
    assert len(asyncio.run(_wait_for_entries(settings, cid, 5))) == 5


def test_small_overlapping_batches_keep_each_customers_order_on_the_output(
        stack: LocalStack, tmp_path: Path) -> None:
    # Batches of 25 with several in flight: the output must still follow the input
    # order of each partition, and every event must be published.
    settings = isolated_settings(stack.settings, batch_size=25)
    asyncio.run(create_topics(settings))
    customers = [_customer() for _ in range(6)]
    events = [envelope("call", customers[i % 6], event_id=f"o-{i:05d}") for i in range(1500)]
    asyncio.run(produce_events(settings, events))  # before the worker starts: a backlog
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        published = asyncio.run(read_topic(
            settings, settings.topics.timeline, until=lambda got: len(got) >= len(events),
            timeout=90))
    finally:
        worker.stop()
    assert len(published) >= len(events), worker.log()
    order: dict[str, list[str]] = {}
    for record in published:
        entry = orjson.loads(record.value)
        order.setdefault(entry["customer_id"], []).append(entry["event_id"])
    for cid in customers:
        assert order[cid] == sorted(order[cid]), cid
        assert len(order[cid]) == 250
