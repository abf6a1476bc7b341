"""streams.routing's pure parts: the hint id and what an offered entry asks for."""

from __future__ import annotations

import orjson

from domain.identity import ambiguous_id
from store.timeline import NewEntry
from streams.routing import OFFERED_TYPES, _ask, hint_id_for


def _entry(customer_id: str, **payload: object) -> NewEntry:
    entry = {"event_id": "e1", "customer_id": customer_id, "channel": "call",
             "type": "call.offered", "payload": payload}
    return NewEntry(customer_id, "e1", 0, orjson.dumps(entry), {}, entry)  # type: ignore[arg-type]


def test_the_hint_id_is_the_same_for_the_same_offered_event_only() -> None:
    assert hint_id_for("e1") == hint_id_for("e1") != hint_id_for("e2")
    assert hint_id_for("e1").startswith("RH-") and len(hint_id_for("e1")) == 27


def test_offered_entries_ask_for_their_customer_or_say_why_there_is_none() -> None:
    known = _ask(_entry("C-1", intent=" billing "))
    assert (known.customer_id, known.intent, known.channel, known.unknown) == (
        "C-1", "billing", "call", None)
    stranger = _ask(_entry("~phone:+447700900123", intent=""))
    assert stranger.customer_id is None and stranger.intent is None
    assert stranger.unknown is not None and stranger.unknown["factor"] == "not_found"
    shared = _ask(_entry(ambiguous_id("phone:+447700900123")))
    assert shared.unknown is not None and shared.unknown["factor"] == "ambiguous"
    assert sorted(OFFERED_TYPES) == ["call.offered", "chat.offered"]
