"""schemas/self-service.v1.json and its check (schemas.validate.check_self_service): what
the topic accepts, what it refuses and how the message names the field; the hot path's
yes/no check agrees with the validator that words the refusals."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import JsonSchemaValueException
from schemas import validate as v
from schemas.validate import AccountEvent, Rejection, check_self_service
from tests.support.fuzz import fuzz, json_values

MAX = 64 * 1024
PREFERENCES = {"preferred_channel": "email",
               "contact_hours": {"from": "22:00", "to": "06:00", "days": ["mon", "sat"]},
               "time_zone": "Europe/London", "language": "pt-BR",
               "accessibility_needs": "large print, please", "no_sales_offers": True}


def _event(event_type: str = "account.note_added", **payload: Any) -> dict:
    default = {"account.note_added": {"note_id": "n-1", "text": "Call me after 6pm"},
               "account.note_deleted": {"note_id": "n-1"},
               "account.preferences_set": dict(PREFERENCES)}[event_type]
    return {"event_id": "e.1:a-b_c", "type": event_type, "customer_id": "C-000001",
            "occurred_at": "2026-11-22T18:04:11.520+01:00", "actor": "customer:C-000001",
            "payload": payload or default}


def _check(event: Any) -> AccountEvent | Rejection:
    return check_self_service(orjson.dumps(event), max_bytes=MAX)


@pytest.mark.parametrize("event_type", ["account.note_added", "account.note_deleted",
                                        "account.preferences_set"])
def test_each_type_is_accepted_as_sent(event_type: str) -> None:
    event = _event(event_type)
    checked = _check(event)
    assert isinstance(checked, AccountEvent), checked
    assert (checked.type, checked.customer_id, checked.payload) == (
        event_type, "C-000001", event["payload"])
    assert checked.occurred_ms == 1_795_367_051_520  # the offset applied


def test_unset_preferences_are_nulls_and_a_window_past_midnight_is_fine() -> None:
    unset = {name: None for name in PREFERENCES} | {"no_sales_offers": False}
    assert isinstance(_check(_event("account.preferences_set", **unset)), AccountEvent)
    assert isinstance(_check(_event("account.preferences_set")), AccountEvent)  # 22:00-06:00


def _set(event: dict, path: str, value: Any) -> dict:
    changed = copy.deepcopy(event)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node[part]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return changed


_DROP = object()
PREFS = _event("account.preferences_set")
NOTE = _event()


@pytest.mark.parametrize(("event", "path", "value", "reason", "message"), [
    (NOTE, "payload.text", "", "schema_violation", "payload.text: must be longer"),
    (NOTE, "payload.text", " \n\t ", "schema_violation",
     "payload.text: must contain a character other than white space"),
    (NOTE, "payload.text", "x" * 2001, "schema_violation", "payload.text: must be shorter"),
    (NOTE, "payload.text", 5, "schema_violation", "payload.text: must be string"),
    (NOTE, "payload.text", _DROP, "schema_violation", "payload.text: is required"),
    (NOTE, "payload.colour", "red", "schema_violation", "payload: must not contain {'colour'}"),
    (NOTE, "colour", "red", "schema_violation", "value: must not contain {'colour'}"),
    (NOTE, "payload.note_id", "a b", "schema_violation",
     "payload.note_id: must be letters, digits and . _ : - only"),
    (NOTE, "payload.note_id", "n" * 101, "schema_violation", "payload.note_id: must be shorter"),
    (NOTE, "event_id", "e/1", "schema_violation", "event_id: must be letters, digits"),
    (NOTE, "event_id", _DROP, "schema_violation", "event_id: is required"),
    (NOTE, "type", "account.note_changed", "schema_violation", "type: must be one of"),
    (NOTE, "customer_id", "~phone:+4420", "schema_violation", "customer_id: must not start"),
    (NOTE, "customer_id", "}x", "schema_violation", "customer_id: must not start"),
    (NOTE, "actor", "C-000001", "schema_violation", "actor: must be '<role>:<subject>'"),
    (NOTE, "occurred_at", "yesterday", "invalid_timestamp", "occurred_at: 'yesterday'"),
    (NOTE, "occurred_at", "2026-11-22T18:04:11", "invalid_timestamp", "add 'Z'"),
    (_event("account.note_deleted"), "payload.text", "x", "schema_violation",
     "payload: must not contain {'text'}"),
    (PREFS, "payload.preferred_channel", "fax", "schema_violation",
     "payload.preferred_channel: must be one of"),
    (PREFS, "payload.contact_hours.from", "9:00", "schema_violation",
     "payload.contact_hours.from: must be a time HH:MM from 00:00 to 23:59"),
    (PREFS, "payload.contact_hours.to", "24:00", "schema_violation",
     "payload.contact_hours.to: must be a time HH:MM"),
    (PREFS, "payload.contact_hours.to", "22:00", "schema_violation",
     "payload.contact_hours.to: must differ from payload.contact_hours.from"),
    (PREFS, "payload.contact_hours.days", ["mon", "mon"], "schema_violation",
     "payload.contact_hours.days: must contain unique items"),
    (PREFS, "payload.contact_hours.days", ["monday"], "schema_violation",
     "payload.contact_hours.days[0]: must be one of"),
    (PREFS, "payload.contact_hours.days", [], "schema_violation",
     "payload.contact_hours.days: must contain at least 1 items"),
    (PREFS, "payload.contact_hours.lunch", "12:00", "schema_violation",
     "payload.contact_hours: must not contain {'lunch'}"),
    (PREFS, "payload.time_zone", "Mars/Olympus_Mons", "schema_violation",
     "payload.time_zone: 'Mars/Olympus_Mons' is not an IANA time zone"),
    (PREFS, "payload.time_zone", "../../etc/passwd", "schema_violation",
     "payload.time_zone: must be an IANA time zone"),
    (PREFS, "payload.language", "EN", "schema_violation",
     "payload.language: must be a BCP 47 language tag"),
    (PREFS, "payload.accessibility_needs", "x" * 501, "schema_violation",
     "payload.accessibility_needs: must be shorter"),
    (PREFS, "payload.no_sales_offers", "yes", "schema_violation",
     "payload.no_sales_offers: must be boolean"),
    (PREFS, "payload.language", _DROP, "schema_violation", "payload.language: is required"),
])
def test_bad_events_name_the_field(event: dict, path: str, value: Any, reason: str,
                                   message: str) -> None:
    checked = _check(_set(event, path, value))
    assert isinstance(checked, Rejection), checked
    assert checked.reason == reason, checked
    assert checked.message.startswith(message) or message in checked.message, checked.message


@pytest.mark.parametrize(("raw", "reason"), [
    (None, "invalid_json"), (b"", "invalid_json"), (b"{", "invalid_json"),
    (b"\xff", "invalid_json"), (b"[]", "not_an_object"), (b"null", "not_an_object"),
    (b'{"text": "' + b"x" * MAX + b'"}', "too_large"),
    (b"[" * 100 + b"]" * 100, "not_an_object"),
])
def test_what_is_not_an_event_at_all(raw: bytes | None, reason: str) -> None:
    checked = check_self_service(raw, max_bytes=MAX)
    assert isinstance(checked, Rejection) and checked.reason == reason, checked


def _mutations() -> st.SearchStrategy[dict]:
    paths = ["payload.text", "payload.note_id", "event_id", "type", "customer_id", "actor",
             "occurred_at", "payload.contact_hours", "payload.contact_hours.days",
             "payload.time_zone", "payload.language", "payload.preferred_channel",
             "payload.no_sales_offers", "payload", "extra"]
    return st.tuples(st.sampled_from([NOTE, PREFS, _event("account.note_deleted")]),
                     st.lists(st.tuples(st.sampled_from(paths), json_values), max_size=3)
                     ).map(lambda pair: _apply(*pair))


def _apply(event: dict, changes: list[tuple[str, Any]]) -> dict:
    for path, value in changes:
        with contextlib.suppress(KeyError, TypeError):  # a path the mutation removed
            event = _set(event, path, value)
    return event


@given(event=_mutations())
@fuzz(200)
def test_the_fast_check_agrees_with_the_validator(event: dict) -> None:
    try:
        v._validate_self_service_schema(event)
        slow = True
    except JsonSchemaValueException:
        slow = False
    assert v._self_service_is_valid(event) == slow, event
    try:
        raw = orjson.dumps(event)
    except TypeError:  # a number JSON allows but orjson will not write
        return
    assert isinstance(check_self_service(raw, max_bytes=MAX), Rejection | AccountEvent)


def test_the_topic_catalogue_examples_are_accepted() -> None:
    """schemas/asyncapi.json's examples of cx.self-service.v1 pass the worker's checks too."""
    from schemas.catalog import ASYNCAPI

    doc = orjson.loads(ASYNCAPI.read_bytes())
    examples = doc["components"]["messages"]["selfServiceEvent"]["examples"]
    assert {e["payload"]["type"] for e in examples} == {
        "account.note_added", "account.note_deleted", "account.preferences_set"}
    for example in examples:
        assert isinstance(_check(example["payload"]), AccountEvent), example["name"]
