"""The export (GET /api/me/export, GET /api/customers/{id}/export, `cxt customers export`)
is complete: after a real run of the worker and the summary feed gives a customer a
timeline, identifiers, surveys (one bottom-2-box, so an alert, rating a contact not in
the timeline, so a wait), a negative interaction (another alert), notes, preferences and
a customer merged into it, every Redis key that belongs to the customer (its hash tag is
the customer or a part merged into it, or one of their alerts, or an identifier they
claim) is named in the export's `keys` and its content is in the document; and nothing
of another customer, stored beside it, is."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from kernel.settings import WriteRate
from store.digest import SURVEYS_COMPLETE
from tests.conftest import LiveDashboard, running_dashboard
from tests.support.helpers import (
    b2b_survey,
    envelope,
    eventually,
    produce,
    produce_events,
    read_topic,
)
from tests.support.processes import SummaryProcess, run_cxt

TAG = uuid.uuid4().hex[:6]
MAIN, PART, STRANGER = f"C-main-{TAG}", f"C-part-{TAG}", f"C-stranger-{TAG}"
PHONE, PART_PHONE, STRANGER_PHONE = (f"+4479{random.randrange(10**8):08d}" for _ in range(3))
EMAIL, STRANGER_EMAIL = f"main-{TAG}@example.org", f"stranger-{TAG}@example.org"
SECRET = f"stranger-secret-{uuid.uuid4().hex}"
HOLDERS = {"advisor": ("advisor", "adv-ana"), "service": ("service", "test-suite"),
           "main": ("customer", MAIN), "stranger": ("customer", STRANGER)}
PREFERENCES = {"preferred_channel": "call", "time_zone": "Europe/Dublin", "language": "ga",
               "contact_hours": {"from": "08:30", "to": "12:00", "days": ["mon", "wed"]},
               "accessibility_needs": None, "no_sales_offers": False}


def _now(offset_s: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + offset_s))


def _wait(check: Callable[[], object], timeout: float = 45) -> object:
    return asyncio.run(eventually(check, timeout=timeout, interval=0.2))


def _self_service(cid: str, event_type: str, payload: dict) -> tuple[bytes, bytes]:
    event = {"event_id": uuid.uuid4().hex, "type": event_type, "customer_id": cid,
             "occurred_at": _now(-60), "actor": "service:crm", "payload": payload}
    return cid.encode(), orjson.dumps(event)


@pytest.fixture(scope="module")
def live(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[LiveDashboard]:
    with running_dashboard(stack, tmp_path_factory, HOLDERS,
                           self_service_write_rate=WriteRate(100, 60, 50)) as dashboard:
        summaries = SummaryProcess(dashboard.settings, tmp_path_factory.mktemp("sum")).start()
        try:
            _story(dashboard)
            yield dashboard
        finally:
            summaries.stop()


def _story(live: LiveDashboard) -> None:
    """A customer's life on the real pipeline: records, identifiers, contacts, surveys,
    a negative interaction, notes and preferences (through the API and the topic), a
    part's own data and then its merge; and a stranger beside them."""
    settings = live.settings
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    prefix = settings.redis_prefix
    http = httpx.Client(base_url=live.url, timeout=30)
    try:
        records = {
            MAIN: {"customer_id": MAIN, "name": "Máire Main", "segment": "vip",
                   "identifiers": {"phones": [PHONE], "emails": [EMAIL]}},
            PART: {"customer_id": PART, "name": "M. Main (old account)",
                   "identifiers": {"phones": [PART_PHONE]}},
            STRANGER: {"customer_id": STRANGER, "name": f"Stranger {SECRET}",
                       "identifiers": {"phones": [STRANGER_PHONE], "emails": [STRANGER_EMAIL]}},
        }
        asyncio.run(produce(settings, settings.topics.customers,
                            [(c.encode(), orjson.dumps(r)) for c, r in records.items()]))
        assert _wait(lambda: all(client.get(f"{prefix}:{{{k}}}:id") for k in (
            f"phone:{PHONE}", f"email:{EMAIL}", f"phone:{PART_PHONE}",
            f"phone:{STRANGER_PHONE}"))), live.worker.log()

        call_id = f"K-{TAG}"
        asyncio.run(produce_events(settings, [
            envelope("call", identity={"phone": PHONE}, occurred_at=_now(-3600),
                     event_type="call.ended", call_id=call_id, intent="billing",
                     queue="billing-uk", agent_id="A-007", wait_seconds=30),
            envelope("email", identity={"email": EMAIL}, occurred_at=_now(-3000),
                     direction="inbound", thread_id=f"T-{TAG}", intent="billing",
                     subject="My bill", body="I want to speak to your supervisor about this."),
            envelope("chat", MAIN, occurred_at=_now(-2000), event_type="chat.ended",
                     chat_id=f"CH-{TAG}", intent="technical", queue="tech-chat"),
            envelope("survey", MAIN, occurred_at=_now(-1000), score=5, agent_id="A-007",
                     queue="billing-uk", contact_id=call_id),
            b2b_survey(MAIN, "the agent hung up on me", contact_id=f"K-missing-{TAG}"),
            envelope("call", identity={"phone": PART_PHONE}, occurred_at=_now(-5000),
                     event_type="call.ended", call_id=f"K-part-{TAG}", intent="moving"),
            envelope("chat", STRANGER, event_type="chat.ended", chat_id=f"CH-s-{TAG}",
                     transcript_excerpt=SECRET),
            b2b_survey(STRANGER, SECRET),
        ]))
        main, stranger = live.headers("main"), live.headers("stranger")
        for headers, text in ((main, "<i>Mine</i>, call me on the mobile"),
                              (stranger, SECRET)):
            assert http.post("/api/me/notes", headers=headers,
                             json={"text": text}).status_code == 202
        assert http.put("/api/me/preferences", headers=main,
                        json=PREFERENCES).status_code == 202
        assert http.put("/api/me/preferences", headers=stranger,
                        json={**PREFERENCES, "accessibility_needs": SECRET}).status_code == 202
        asyncio.run(produce(settings, settings.topics.self_service, [
            _self_service(PART, "account.note_added", {"note_id": f"part-{TAG}",
                                                        "text": "old account's note"}),
            _self_service(PART, "account.preferences_set",
                          {**PREFERENCES, "language": "en"})]))

        def settled() -> bool:
            return (client.hlen(f"{prefix}:{{{MAIN}}}:ev") == 7
                    and client.scard(f"{prefix}:{{{MAIN}}}:alerts") == 2
                    and client.exists(f"{prefix}:{{{MAIN}}}:prefs")
                    and client.exists(f"{prefix}:{{{MAIN}}}:notes")
                    and client.exists(f"{prefix}:{{{PART}}}:notes")
                    and client.hlen(f"{prefix}:{{{PART}}}:ev") == 3
                    and client.exists(f"{prefix}:{{{STRANGER}}}:notes"))
        assert _wait(settled), live.worker.log()

        # Now the CRM merges the old account in: its timeline moves, its own keys stay.
        records[PART]["merged_into"] = MAIN
        asyncio.run(produce(settings, settings.topics.customers,
                            [(PART.encode(), orjson.dumps(records[PART]))]))
        assert _wait(lambda: client.hlen(f"{prefix}:{{{MAIN}}}:ev") == 10
                     and client.get(f"{prefix}:{{{PART}}}:into") == MAIN), live.worker.log()

        def summarised(found: list) -> bool:
            return any(r.key == MAIN.encode() and r.value and
                       orjson.loads(r.value)["bottom_2_box_count"] == 1 for r in found)
        assert summarised(asyncio.run(read_topic(
            settings, settings.topics.customer_summary, until=summarised, timeout=60)))
        assert _wait(lambda: client.exists(f"{prefix}:{{{MAIN}}}:sum:survey"))
    finally:
        http.close()
        client.close()


# -- what is in Redis ----------------------------------------------------------------------


def _dump(client: redis.Redis, key: str) -> tuple[str, Any]:
    kind = client.type(key)
    if kind == "string":
        return kind, client.get(key)
    if kind == "hash":
        return kind, client.hgetall(key)
    if kind == "set":
        return kind, sorted(client.smembers(key))
    if kind == "zset":
        return kind, client.zrange(key, 0, -1)
    return kind, None


def _tag(key: str) -> str:
    return key[key.index("{") + 1:key.index("}:")] if "{" in key and "}:" in key else ""


def _belonging(client: redis.Redis, prefix: str) -> dict[str, tuple[str, Any]]:
    parts = {MAIN, PART}
    alerts = {a for p in parts for a in client.smembers(f"{prefix}:{{{p}}}:alerts")}
    identifiers = {f"phone:{PHONE}", f"email:{EMAIL}", f"phone:{PART_PHONE}"}
    found = {}
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        tag = _tag(key)
        if tag in parts or tag in alerts or tag in identifiers:
            found[key] = _dump(client, key)
    return found


def _flatten(node: Any, into: set[str]) -> set[str]:
    """Every scalar (as text), dict key and container (as sorted JSON) of a document."""
    if isinstance(node, dict):
        into.add(orjson.dumps(node, option=orjson.OPT_SORT_KEYS).decode())
        for key, value in node.items():
            into.add(str(key))
            _flatten(value, into)
    elif isinstance(node, list):
        into.add(orjson.dumps(node, option=orjson.OPT_SORT_KEYS).decode())
        for item in node:
            _flatten(item, into)
    elif node is not None:
        into.add(str(node).lower() if isinstance(node, bool) else str(node))
    return into


def _held(value: str, everything: set[str]) -> bool:
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        return orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode() in everything
    if value in everything:
        return True
    # An identifier's claimants are one string of ids.
    return "\n" in value and all(part in everything for part in value.split("\n"))


def _missing(stored: dict[str, tuple[str, Any]], document: dict) -> list[str]:
    everything = _flatten(document, set())
    listed = set(document["keys"])
    missing = []
    for key, (kind, value) in sorted(stored.items()):
        if key not in listed:
            missing.append(f"{key}: not in `keys`")
            continue
        values: list[str] = []
        if kind == "string":
            values = [value]
        elif kind == "hash":
            values = [v for pair in value.items() for v in pair]
        elif kind in ("set", "zset"):
            # The survey index's completeness mark is ours, not anything about them.
            values = [v for v in value if not (key.endswith(":sv") and v == SURVEYS_COMPLETE)]
        missing += [f"{key} ({kind}): {v[:80]!r}" for v in values if not _held(v, everything)]
    return missing


def test_the_export_holds_every_key_of_the_customer_and_nothing_of_anyone_else(
        live: LiveDashboard, http: httpx.Client, tmp_path: Path) -> None:
    settings = live.settings
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        stored = _belonging(client, settings.redis_prefix)
        reply = http.get(f"/api/customers/{MAIN}/export", headers=live.headers("advisor"))
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-disposition"] == (
            f'attachment; filename="cx-timeline-export-{MAIN}.json"')
        document = reply.json()
        # The story left keys of every kind the export promises.
        suffixes = {key.rsplit("}:", 1)[1] for key in stored}
        assert {"profile", "tl", "ev", "alerts", "notes", "prefs", "recent", "niopen",
                "rwait", "into", "merged", "id", "alert", "sum:survey", "sum:b2b",
                "sum:alerts"} <= suffixes, sorted(suffixes)
        assert not _missing(stored, document), _missing(stored, document)
        text = reply.text
        for other in (STRANGER, STRANGER_PHONE, STRANGER_EMAIL, SECRET):
            assert other not in text, other
    finally:
        client.close()

    assert document["customer_id"] == MAIN and document["profile"]["name"] == "Máire Main"
    assert len(document["timeline"]) == 10 and len(document["alerts"]) == 2
    assert {a["kind"] for a in document["alerts"]} == {"bottom_2_box", "negative_interaction"}
    assert [n["text"] for n in document["notes"]] == ["<i>Mine</i>, call me on the mobile"]
    assert {k: document["preferences"][k] for k in PREFERENCES} == PREFERENCES
    assert document["merges"] == {"merged_into": None, "merged_from": [PART]}
    (part,) = document["merged_parts"]
    assert part["customer_id"] == PART and part["merges"]["merged_into"] == MAIN
    assert [n["note_id"] for n in part["notes"]] == [f"part-{TAG}"]
    assert sorted(i["key"] for i in document["identifiers"]) == sorted(
        [f"phone:{PHONE}", f"email:{EMAIL}", f"phone:{PART_PHONE}"])
    assert all(i["claimants"] in ([MAIN], [PART]) for i in document["identifiers"])
    assert document["crm_summary_state"]["bottom_2_box_event_ids"]

    # The customer's own download is the same document, other claimants counted, not named.
    own = http.get("/api/me/export", headers=live.headers("main"))
    assert own.status_code == 200 and own.headers["content-disposition"].startswith("attachment")
    mine = own.json()
    assert mine["keys"] == document["keys"] and mine["timeline"] == document["timeline"]
    assert all(i["claimed_by_you"] and i["also_claimed_by_others"] == 0
               for i in mine["identifiers"])
    for other in (STRANGER, SECRET):
        assert other not in own.text
    theirs = http.get("/api/me/export", headers=live.headers("stranger")).text
    assert SECRET in theirs and MAIN not in theirs and PHONE not in theirs

    # The command line writes the same document to a new file of its own.
    out = tmp_path / "export.json"
    done = run_cxt(settings, "customers", "export", MAIN, "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert oct(out.stat().st_mode)[-3:] == "600"
    written = orjson.loads(out.read_bytes())
    assert {k: v for k, v in written.items() if k != "generated_at"} == {
        k: v for k, v in document.items() if k != "generated_at"}
    again = run_cxt(settings, "customers", "export", MAIN, "--output", str(out))
    assert again.returncode == 2 and "exists" in again.stderr
    nobody = run_cxt(settings, "customers", "export", f"C-nobody-{TAG}")
    assert nobody.returncode == 1 and "nothing is held" in nobody.stderr
    assert http.get(f"/api/customers/C-nobody-{TAG}/export",
                    headers=live.headers("service")).status_code == 404
