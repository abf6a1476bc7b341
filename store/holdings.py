"""Everything held about a customer in Redis, read key by key for the data-subject export
(`usecases.self_service.export`).

Per customer, every key carrying its hash tag (store.keys): record, merge links,
timeline, alert index, notes and preferences, contact memory, routing memory and the
summary feed's state; per alert its key and its `rated_early` mark; per identifier
the claimants and the provisional profiles holding it.  Each read is one pipeline,
whatever the number of customers, alerts or identifiers, and says which keys held
something (`keys`), so the export can name every key it read.

A key added to `store.keys` for a customer must be added here too:
tests/integration/dashboard/test_export.py scans the whole of Redis after a real run
and fails on any key of the customer that the export does not name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from kernel.redis_client import RedisClient, text
from store.keys import Keys

STRING, HASH, SET, ZSET = "string", "hash", "set", "zset"


@dataclass(frozen=True, slots=True)
class CustomerHoldings:
    """One customer's keys, decoded; empty where the key does not exist."""

    customer_id: str
    profile: dict | None
    timeline: list[dict]  # newest first
    alert_ids: list[str]
    notes: list[dict]  # newest first
    preferences: dict | None
    contacts: dict[str, str]
    open_negative: dict[str, str]
    rated_waits: dict[str, str]
    rated_agents: dict[str, int | str]  # counts; kept as text if one is not a number
    summary: dict[str, Any]
    merged_into: str | None
    merged_from: list[str]
    keys: list[str] = field(default_factory=list)  # the keys that held something


@dataclass(frozen=True, slots=True)
class Around:
    """What hangs off a customer's alerts and identifiers."""

    alerts: list[dict]
    alert_marks: dict[str, str]  # alert_id -> its rated_early mark, where set
    claimants: dict[str, list[str]]  # identifier key -> the customers claiming it
    aliases: dict[str, list[str]]  # identifier key -> provisional profiles holding it
    keys: list[str] = field(default_factory=list)


class Holdings:
    def __init__(self, redis: RedisClient, keys: Keys, intents: Sequence[str] = ()) -> None:
        self.redis = redis
        self.keys = keys
        # The configured intents, whose index keys (store.timeline) name the customer's
        # contacts by their ids: read so the export names those keys too.
        self.intents = tuple(intents)

    def _customer_keys(self, cid: str) -> list[tuple[str, str, str]]:
        """(name, key, type) of every key of one customer."""
        k = self.keys
        return [
            ("profile", k.profile(cid), STRING),
            ("merged_into", k.merged_into(cid), STRING),
            ("merged_from", k.merged_from(cid), SET),
            ("timeline", k.timeline(cid), ZSET),
            ("entries", k.entries(cid), HASH),
            ("alerts", k.customer_alerts(cid), SET),
            ("notes", k.notes(cid), HASH),
            ("preferences", k.preferences(cid), STRING),
            ("contacts", k.contacts(cid), HASH),
            ("open_negative", k.open_negative(cid), HASH),
            ("rated_waits", k.rated_waits(cid), HASH),
            ("rated_agents", k.rated_agents(cid), HASH),
            ("summary_survey", k.summary_survey(cid), HASH),
            ("summary_bottom_2_box", k.summary_bottom_2_box(cid), SET),
            ("summary_alerts", k.summary_alerts(cid), HASH),
            ("summary_erased", k.summary_erased(cid), STRING),
            ("survey_index", k.survey_index(cid), ZSET),
            *((f"intent_index:{i}", k.intent_index(cid, i), ZSET) for i in self.intents),
        ]

    async def of_customers(self, customer_ids: Sequence[str]) -> list[CustomerHoldings]:
        """Every key of each customer: one round trip."""
        wanted = [self._customer_keys(cid) for cid in customer_ids]
        replies = await self._read([(key, kind) for keys in wanted for _, key, kind in keys])
        out: list[CustomerHoldings] = []
        at = 0
        for cid, keys in zip(customer_ids, wanted, strict=True):
            got = {name: replies[at + i] for i, (name, _, _) in enumerate(keys)}
            found = [key for i, (_, key, _) in enumerate(keys) if _held(replies[at + i])]
            at += len(keys)
            out.append(_customer(cid, got, found))
        return out

    async def around(self, alert_ids: Sequence[str], identity_keys: Sequence[str]) -> Around:
        """The alerts (with their marks) and the identifiers' claimants and provisional
        profiles: one round trip."""
        k = self.keys
        wanted: list[tuple[str, str]] = []
        for alert_id in alert_ids:
            wanted += [(k.alert(alert_id), STRING), (k.rated_early(alert_id), STRING)]
        for key in identity_keys:
            wanted += [(k.identity(key), STRING), (k.provisional_aliases(key), SET)]
        replies = await self._read(wanted)
        alerts: list[dict] = []
        marks: dict[str, str] = {}
        for i, alert_id in enumerate(alert_ids):
            body, mark = replies[2 * i], replies[2 * i + 1]
            if body is not None:
                alerts.append(orjson.loads(body))
            if mark is not None:
                marks[alert_id] = text(mark)
        base = 2 * len(alert_ids)
        claimants: dict[str, list[str]] = {}
        aliases: dict[str, list[str]] = {}
        for i, key in enumerate(identity_keys):
            claimed, held = replies[base + 2 * i], replies[base + 2 * i + 1]
            claimants[key] = [] if claimed is None else text(claimed).split("\n")
            aliases[key] = sorted(text(m) for m in held)
        return Around(alerts, marks, claimants, aliases,
                      [key for (key, _), reply in zip(wanted, replies, strict=True)
                       if _held(reply)])

    async def _read(self, wanted: Sequence[tuple[str, str]]) -> list[Any]:
        if not wanted:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key, kind in wanted:
            if kind == STRING:
                pipe.get(key)
            elif kind == HASH:
                pipe.hgetall(key)
            elif kind == SET:
                pipe.smembers(key)
            else:
                pipe.zrevrange(key, 0, -1)
        return list(await pipe.execute())


def _held(reply: Any) -> bool:
    return reply is not None and reply != {} and reply != set() and reply != []


def _texts(mapping: dict) -> dict[str, str]:
    return {text(name): text(value) for name, value in mapping.items()}


def _customer(cid: str, got: dict[str, Any], found: list[str]) -> CustomerHoldings:
    bodies = {text(eid): body for eid, body in got["entries"].items()}
    order = [text(eid) for eid in got["timeline"]]
    # Newest first as the sorted set orders them; an entry only in the hash (none should
    # be) still goes into the export, last.
    listed = set(order)
    timeline = [orjson.loads(bodies[eid]) for eid in order if eid in bodies]
    timeline += [orjson.loads(body) for eid, body in bodies.items() if eid not in listed]
    notes = [orjson.loads(body) for body in got["notes"].values()]
    notes.sort(key=lambda note: (note.get("added_at") or "", note.get("note_id") or ""),
               reverse=True)
    survey = _texts(got["summary_survey"])
    erased = got["summary_erased"]
    return CustomerHoldings(
        customer_id=cid,
        profile=None if got["profile"] is None else orjson.loads(got["profile"]),
        timeline=timeline,
        alert_ids=sorted(text(m) for m in got["alerts"]),
        notes=notes,
        preferences=None if got["preferences"] is None else orjson.loads(got["preferences"]),
        contacts=_texts(got["contacts"]),
        open_negative=_texts(got["open_negative"]),
        rated_waits=_texts(got["rated_waits"]),
        rated_agents={name: int(value) if value.isdigit() else value
                      for name, value in _texts(got["rated_agents"]).items()},
        summary={
            "newest_survey": None if not survey else {
                **survey, **({"survey": orjson.loads(survey["survey"])}
                             if "survey" in survey else {})},
            "bottom_2_box_event_ids": sorted(text(m) for m in got["summary_bottom_2_box"]),
            "alert_versions": _texts(got["summary_alerts"]),
            "erased_at_ms": None if erased is None else text(erased),
        },
        merged_into=None if got["merged_into"] is None else text(got["merged_into"]),
        merged_from=sorted(text(m) for m in got["merged_from"]),
        keys=found,
    )
