"""What customers do with their own data, shared by the /api/me routes (dashboard/me.py)
and the command line (`cxt customers export`).

Writes are events: a note added or deleted, or the preferences set, is built here as
a cx.self-service.v1 value, checked against schemas/self-service.v1.json with the
worker's own check (so the API and the topic refuse the same things, in the same
words), and published keyed by the customer id; the worker files it in the timeline
and keeps the notes and preferences (streams.self_service).  The stream stays the
one source of truth, so a write is accepted (202), not yet applied, when it returns.

The export is everything held about a customer as one JSON document: the record,
identifiers and who claims them, every timeline entry, alerts in full, the summary
feed's state, notes, preferences, contact and routing memory, merge links, and the
same for each customer merged into it; `keys` names every Redis key it read.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from domain.identity import root_of
from domain.negative import KIND as NEGATIVE
from kernel.errors import CxtError
from kernel.settings import Settings
from kernel.times import utc_now_iso
from schemas.registry import load_schema
from schemas.validate import Rejection, check_self_service, customer_identity_keys
from store.holdings import CustomerHoldings, Holdings
from store.stores import Stores, open_stores

_SCHEMA = load_schema("self-service.v1")
_PREFERENCES = _SCHEMA["definitions"]["preferences"]
# The preferences object's fields, in the schema's order; a PUT that leaves one out
# unsets it (null, or false for no_sales_offers).
PREFERENCE_FIELDS: tuple[str, ...] = tuple(_PREFERENCES["properties"])
PREFERENCE_DEFAULTS: dict[str, Any] = {name: None for name in PREFERENCE_FIELDS} | {
    "no_sales_offers": False}
NOTE_MAX_LENGTH: int = _SCHEMA["definitions"]["note_added"]["properties"]["text"]["maxLength"]
# More notes than this per customer are refused by the API (the topic takes them): a
# customer's notes are read whole by the agent page and the export.
MAX_NOTES = 200
# An event is a few KiB at most (a 2000-character note, 500 characters of needs).
MAX_EVENT_BYTES = 16 * 1024


class SelfServiceError(CxtError):
    """A write the customer cannot make; one line."""


class BadSelfServiceInput(SelfServiceError):
    """A field breaks the schema; `field` names it as the caller sent it (`text`,
    `contact_hours.from`), and the message starts with it."""

    exit_status = 2

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class NoSuchNote(SelfServiceError):
    pass


class TooManyNotes(SelfServiceError):
    pass


class CustomerMerged(SelfServiceError):
    """The customer is merged into another: what they write would be filed there, out
    of sight of their own id, so the API refuses it."""


# -- writes ------------------------------------------------------------------------------


def account_event(customer_id: str, event_type: str, payload: dict, actor: str) -> dict:
    """A checked cx.self-service.v1 value; BadSelfServiceInput naming the field if not."""
    event = {"event_id": uuid.uuid4().hex, "type": event_type, "customer_id": customer_id,
             "occurred_at": utc_now_iso(), "actor": actor, "payload": payload}
    checked = check_self_service(orjson.dumps(event), max_bytes=MAX_EVENT_BYTES)
    if isinstance(checked, Rejection):
        raise _input_error(checked)
    return event


def _input_error(rejection: Rejection) -> BadSelfServiceInput:
    """The worker's message, its field named as the API's body names it."""
    path, sep, detail = rejection.message.partition(": ")
    if not sep:
        return BadSelfServiceInput("body", rejection.message)
    fields = [p.strip().removeprefix("payload.") for p in path.split(",")]
    name = ", ".join("body" if f == "payload" else f for f in fields)
    return BadSelfServiceInput(fields[0], f"{name}: {detail}")


async def publish(producer: AIOKafkaProducer, topic: str, event: dict) -> None:
    # Keyed by customer: one customer's changes stay in order on one partition.
    await producer.send_and_wait(topic, orjson.dumps(event), key=event["customer_id"].encode())


async def _writable(stores: Stores, customer_id: str) -> None:
    into = (await stores.identities.merged_into([customer_id])).get(customer_id)
    if into is not None:
        raise CustomerMerged(f"customer {customer_id} is merged into another customer record; "
                             "its notes and preferences are kept there")


async def add_note(stores: Stores, producer: AIOKafkaProducer, topic: str, customer_id: str,
                   text: object, actor: str) -> dict:
    """Publish a note; the event (its payload has the new note_id)."""
    if not isinstance(text, str):
        raise BadSelfServiceInput("text", "text: is required (a string of 1 to "
                                  f"{NOTE_MAX_LENGTH} characters)")
    event = account_event(customer_id, "account.note_added",
                          {"note_id": uuid.uuid4().hex, "text": text}, actor)
    await _writable(stores, customer_id)
    if await stores.self_service.note_count(customer_id) >= MAX_NOTES:
        raise TooManyNotes(f"you have {MAX_NOTES} notes, the most we keep; delete one first")
    await publish(producer, topic, event)
    return event


async def delete_note(stores: Stores, producer: AIOKafkaProducer, topic: str,
                      customer_id: str, note_id: str, actor: str) -> dict:
    event = account_event(customer_id, "account.note_deleted", {"note_id": note_id}, actor)
    await _writable(stores, customer_id)
    if not await stores.self_service.has_note(customer_id, note_id):
        raise NoSuchNote(f"no note {note_id[:100]!r}")
    await publish(producer, topic, event)
    return event


async def set_preferences(stores: Stores, producer: AIOKafkaProducer, topic: str,
                          customer_id: str, preferences: dict, actor: str) -> dict:
    """Publish the whole preferences object (fields left out are unset)."""
    event = account_event(customer_id, "account.preferences_set",
                          {**PREFERENCE_DEFAULTS, **preferences}, actor)
    await _writable(stores, customer_id)
    await publish(producer, topic, event)
    return event


# -- reads -------------------------------------------------------------------------------


def alert_for_customer(alert: dict) -> dict:
    """An alert as its customer sees it: what it is about and where it stands, without
    the staff who handle it (actors, notes, agents, queues) or other entries quoted."""
    shown = {name: alert.get(name) for name in ("alert_id", "kind", "status", "raised_at",
                                                 "category")}
    if alert.get("kind") != NEGATIVE:
        shown |= {"survey": {"score": alert.get("score"), "scale_min": alert.get("scale_min"),
                             "scale_max": alert.get("scale_max"),
                             "comment": alert.get("comment"),
                             "occurred_at": alert.get("survey_occurred_at")}}
    shown["history"] = [{k: step[k] for k in ("event", "at", "outcome") if k in step}
                        for step in alert.get("history") or ()]
    return shown


# -- the export ----------------------------------------------------------------------------


async def export_customer(stores: Stores, customer_id: str, *,
                          name_others: bool = True) -> dict:
    """Everything held about `customer_id` (see the module's docstring).  With
    `name_others` false (the customer's own export) the other customers claiming one of
    its identifiers, and the provisional profiles holding one, are counted, not named."""
    holdings = Holdings(stores.redis, stores.keys, tuple(stores.timelines.relevance))
    parts, merges = await asyncio.gather(stores.identities.parts(customer_id),
                                         stores.identities.merged_into([customer_id]))
    held = await holdings.of_customers(parts)
    identity_keys = list(dict.fromkeys(
        key for h in held if h.profile for key in customer_identity_keys(h.profile)))
    around = await holdings.around([a for h in held for a in h.alert_ids], identity_keys)
    alerts = {a["alert_id"]: a for a in around.alerts}
    keys = [*around.keys, *(key for h in held for key in h.keys)]

    root = root_of(customer_id, merges)
    in_root: dict[str, Any] = {}
    if root != customer_id:  # merged elsewhere: what is filed under it there is its too
        (root_held,) = await holdings.of_customers([root])
        mine = set(parts)

        def filed_here(item: dict) -> bool:
            return (item.get("filed_under") or item.get("customer_id")) in mine

        entries = [e for e in root_held.timeline if filed_here(e)]
        theirs = (await holdings.around(root_held.alert_ids, [])).alerts
        in_root = {"root": root, "timeline": entries,
                   "alerts": [a for a in theirs if filed_here(a)]}
        if entries:
            keys += [stores.keys.timeline(root), stores.keys.entries(root)]
        if in_root["alerts"]:
            keys.append(stores.keys.customer_alerts(root))
            keys += [stores.keys.alert(a["alert_id"]) for a in in_root["alerts"]]

    main, *others = [_section(h, alerts) for h in held]
    identifiers = []
    for key in identity_keys:
        claimants, aliases = around.claimants[key], around.aliases[key]
        item: dict[str, Any] = {"key": key}
        if name_others:
            item |= {"claimants": claimants, "provisional_profiles_holding_it": aliases}
        else:
            item |= {"claimed_by_you": any(c in parts for c in claimants),
                     "also_claimed_by_others": sum(1 for c in claimants if c not in parts),
                     "provisional_profiles_holding_it": len(aliases)}
        identifiers.append(item)
    return {
        "customer_id": customer_id,
        "generated_at": utc_now_iso(),
        "about": "Everything cx-timeline holds about this customer: the customer record, "
                 "identifiers, every timeline entry, alerts, the CRM summary feed's state, "
                 "notes, preferences, contact and routing memory, merges, and the same for "
                 "every customer record merged into this one. `keys` names each Redis key "
                 "read.",
        **main,
        "identifiers": identifiers,
        "alert_marks": around.alert_marks,
        "merged_elsewhere": in_root or None,
        "merged_parts": others,
        "keys": sorted(set(keys)),
    }


def _section(held: CustomerHoldings, alerts: dict[str, dict]) -> dict:
    """One customer's part of the export."""
    return {
        "customer_id": held.customer_id,
        "profile": held.profile,
        "timeline": held.timeline,
        "alerts": [alerts[a] for a in held.alert_ids if a in alerts],
        "notes": held.notes,
        "preferences": held.preferences,
        "crm_summary_state": held.summary,
        "contact_memory": {"recent_contacts": held.contacts,
                           "open_negative_alerts": held.open_negative,
                           "rated_contact_waits": held.rated_waits},
        "routing_memory": {"rated_agents": held.rated_agents},
        "merges": {"merged_into": held.merged_into, "merged_from": held.merged_from},
    }


async def export_from_settings(settings: Settings, customer_id: str) -> dict:
    """`cxt customers export`: the export over a connection of its own."""
    async with open_stores(settings) as stores:
        return await export_customer(stores, customer_id)


__all__ = ["MAX_NOTES", "NOTE_MAX_LENGTH", "PREFERENCE_DEFAULTS", "PREFERENCE_FIELDS",
           "BadSelfServiceInput", "CustomerMerged", "NoSuchNote", "SelfServiceError",
           "TooManyNotes", "account_event", "add_note", "alert_for_customer", "delete_note",
           "export_customer", "export_from_settings", "publish", "set_preferences"]
