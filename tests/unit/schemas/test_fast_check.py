"""The hot path's yes/no check of a whole event (jsonschema-rs on the envelope file with the
channel's payload file embedded: schemas.validate._event_document) against the reference,
fastjsonschema compiled from the same document: hypothesis events, valid and mutated, must
get the same verdict from both.  Where the fast check said yes and the reference no, the
worker would accept what the contract refuses.  And check_interaction must return the same
Interaction or Rejection with the fast path as without it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import fastjsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxt.traffic import TrafficGenerator, make_customers
from schemas import PAYLOAD_VALIDATORS, JsonSchemaValueException, load_schema
from schemas import validate as v
from tests.support.fuzz import (
    MAX_BYTES,
    bad_envelopes,
    fuzz,
    json_values,
    nasty_text,
    raw_values,
)

CHANNELS = sorted(PAYLOAD_VALIDATORS)
_REFERENCE = {channel: fastjsonschema.compile(v._event_document(channel), use_default=False)
              for channel in CHANNELS}
# Where Python's re and ECMA-262 part ways (the spaces each counts as \s, line ends) and
# what the patterns single out (control characters, '@', '+', '~', '}').
TRICKY = ("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f"
          "\u3000\ufeff\x00\x7f\x9f@+~}._-aZ09\xe9\U0001f600")
# The characters only one of the two reads as a space: drawn more often.
DIVERGENT = "\x1c\x1d\x1e\x1f\x85\ufeff"
tricky_text = st.text(alphabet=TRICKY, max_size=12)
# Made once: a generator per example would be most of the test's time.
_DEMO: dict[str, list[dict[str, Any]]] = {channel: [] for channel in CHANNELS}
for _channel, _event in TrafficGenerator(make_customers(50, 1), 11).take(1000):
    _DEMO[_channel].append(_event)
_NEAR_VALID = ("+442071234567", "+44 20 7123 4567", " +442071234567 ", "ada@example.org",
               " Ada@Example.org ", "x", "@ada", "C-000001", "call.started", "evt-1",
               "2026-11-22T10:00:00Z")


@st.composite
def near_valid_text(draw: st.DrawFn, examples: tuple[str, ...] = _NEAR_VALID) -> str:
    """A valid-looking value with a tricky character put in, or one dropped."""
    text = draw(st.sampled_from(examples))
    at = draw(st.integers(0, len(text)))
    if draw(st.booleans()):
        return text[:at] + draw(st.sampled_from(DIVERGENT) | st.sampled_from(TRICKY)) + text[at:]
    return text[:at] + text[at + 1:]


values = near_valid_text() | near_valid_text() | tricky_text | nasty_text | json_values


def _payload_fields(channel: str) -> list[str]:
    # Read from the file, so a new field is fuzzed as soon as it is written down.
    return sorted(load_schema(f"payloads/{channel}.v1")["properties"])


@st.composite
def mutated_events(draw: st.DrawFn, channel: str) -> dict[str, Any]:
    """A demo event of `channel` with zero to three values replaced or removed."""
    event = orjson.loads(orjson.dumps(draw(st.sampled_from(_DEMO[channel]))))  # a private copy
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(("top", "payload", "identity", "social", "messages")))
        if where == "top":
            key = draw(st.sampled_from(("event_id", "type", "occurred_at", "customer_id",
                                        "identity", "payload", "extra")))
            target = event
        elif where == "payload":
            key = draw(st.sampled_from(_payload_fields(channel)))
            target = event["payload"] if isinstance(event.get("payload"), dict) else event
        elif where == "identity":
            if not isinstance(event.get("identity"), dict):
                event["identity"] = {}
            key, target = draw(st.sampled_from(("phone", "email", "social", "other"))), \
                event["identity"]
        elif where == "social":
            identity = event.setdefault("identity", {})
            if not isinstance(identity, dict):
                continue
            social = identity.setdefault("social", {"network": "x", "handle": "@ada"})
            if not isinstance(social, dict):
                continue
            key, target = draw(st.sampled_from(("network", "handle"))), social
        else:  # a chat transcript line
            if not isinstance(event.get("payload"), dict):
                continue
            line: dict[str, Any] = {"from": "customer", "text": "hi"}
            event["payload"]["messages"] = [line]
            key, target = draw(st.sampled_from(("from", "text", "at"))), line
        if draw(st.integers(0, 5)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(values)
    return event


@st.composite
def near_valid_identities(draw: st.DrawFn) -> dict[str, Any]:
    """An identity whose identifiers are each near a valid one: the patterns' edges."""
    identity: dict[str, Any] = {}
    for key, examples in (("phone", _NEAR_VALID[:3]), ("email", _NEAR_VALID[3:5])):
        if draw(st.booleans()):
            identity[key] = draw(near_valid_text(examples))
    if draw(st.booleans()):
        identity["social"] = {"network": draw(near_valid_text(("x", "linked.in"))),
                              "handle": draw(near_valid_text(("@ada", "ada")))}
    return identity


def _reference_accepts(event: Any, channel: str) -> bool:
    try:
        _REFERENCE[channel](event)
    except JsonSchemaValueException:
        return False
    return True


def _agree(event: Any, channel: str) -> None:
    fast = v._CHANNEL_CHECKS[channel].is_valid(event)
    assert fast == _reference_accepts(event, channel), (channel, fast, event)


def _same_with_and_without_the_fast_path(raw: bytes | None, channel: str) -> None:
    fast = v.check_interaction(raw, channel, max_bytes=MAX_BYTES)
    slow_checks = dataclasses.replace(v._CHANNEL_CHECKS[channel], is_valid=lambda _: False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(v._CHANNEL_CHECKS, channel, slow_checks)
        slow = v.check_interaction(raw, channel, max_bytes=MAX_BYTES)
    assert fast == slow, (raw, fast, slow)


def test_the_demo_traffic_is_valid_both_ways() -> None:
    generator = TrafficGenerator(make_customers(200, 3), 5)
    for channel, envelope in generator.take(2000):
        assert v._CHANNEL_CHECKS[channel].is_valid(envelope), envelope
        assert _reference_accepts(envelope, channel), envelope


@pytest.mark.parametrize("channel", CHANNELS)
@given(data=st.data())
@fuzz(200)
def test_mutated_events_get_the_same_verdict(channel: str, data: st.DataObject) -> None:
    event = data.draw(mutated_events(channel))
    _agree(event, channel)
    # The standard library writes integers of any size; orjson stops at 64 bits.
    _same_with_and_without_the_fast_path(json.dumps(event).encode(), channel)


@pytest.mark.parametrize("channel", ["call", "email"])
@given(identity=near_valid_identities(), data=st.data())
@fuzz(150)
def test_near_valid_identities_get_the_same_verdict(channel: str, identity: dict[str, Any],
                                                   data: st.DataObject) -> None:
    event = orjson.loads(orjson.dumps(data.draw(st.sampled_from(_DEMO[channel]))))
    event["identity"] = identity
    _agree(event, channel)


@pytest.mark.parametrize("channel", CHANNELS)
@given(data=st.data())
@fuzz(100)
def test_broken_envelopes_get_the_same_verdict(channel: str, data: st.DataObject) -> None:
    raw = data.draw(bad_envelopes(channel))
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    _agree(event, channel)


@pytest.mark.parametrize("channel", CHANNELS)
@given(payload=json_values, data=st.data())
@fuzz(100)
def test_arbitrary_payloads_get_the_same_verdict(channel: str, payload: Any,
                                                 data: st.DataObject) -> None:
    envelope = orjson.loads(orjson.dumps(data.draw(st.sampled_from(_DEMO[channel]))))
    if isinstance(payload, dict):
        envelope["payload"] = {**envelope["payload"], **payload}
    else:
        envelope["payload"] = payload
    _agree(envelope, channel)


@pytest.mark.parametrize("channel", CHANNELS)
@given(data=st.data())
@fuzz(100)
def test_check_interaction_is_the_same_without_the_fast_path(channel: str,
                                                             data: st.DataObject) -> None:
    _same_with_and_without_the_fast_path(data.draw(raw_values(channel)), channel)


def test_an_email_with_a_python_only_space_is_refused() -> None:
    # U+001C is \s to Python's re (so not [^@\s]) but not to ECMA-262: before the patterns
    # were translated, the fast check let this through and the worker accepted it.
    event = {"event_id": "e-1", "type": "call.started", "occurred_at": "2026-11-22T10:00:00Z",
             "identity": {"email": "a\x1cb@example.org"}, "payload": {}}
    result = v.check_interaction(orjson.dumps(event), "call", max_bytes=MAX_BYTES)
    assert isinstance(result, v.Rejection) and result.reason == v.SCHEMA_VIOLATION
    assert result.message.startswith("identity.email: must be an e-mail address"), result


def test_a_payload_with_a_ref_cannot_be_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    real = v.load_schema

    def with_ref(name: str) -> dict[str, Any]:
        document = real(name)
        if name.startswith("payloads/"):
            document["properties"]["x"] = {"$ref": "#/definitions/x"}
        return document

    monkeypatch.setattr(v, "load_schema", with_ref)
    with pytest.raises(ValueError, match=r"\$ref"):
        v._event_document("call")


# -- the records: customers, alert actions, identity actions ---------------------------------

_RECORDS: dict[str, tuple[Any, Any, list[dict[str, Any]]]] = {
    "customer.v1": (v._customer_is_valid, v._validate_customer_schema,
                    make_customers(20, 4)),
    "alert-action.v1": (v._action_is_valid, v._validate_action_schema, [
        {"action_id": "act-1", "alert_id": "AL-0123456789abcdef0123", "action": "callback",
         "actor": "agent:A-007", "outcome": "reached", "note": "called back", "at": "x"},
        {"alert_id": "AL-1", "action": "resolve", "actor": "A-1", "category": "skill"},
        {"alert_id": "AL-1", "action": "acknowledge", "actor": "A-1", "note": None}]),
    "identity-action.v1": (v._identity_action_is_valid, v._validate_identity_action_schema, [
        {"action_id": "a-1", "action": "confirm", "profile_id": "~phone:+442071234567",
         "event_id": "evt-1", "customer_id": "C-000001", "actor": "agent:A-007",
         "at": "2026-11-22T10:00:00Z"}]),
}


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: the keys of its objects, the indexes of its arrays."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*path, index))
    return found


@st.composite
def mutated_records(draw: st.DrawFn, name: str) -> Any:
    """A valid record of schema `name` with zero to three values replaced, removed or added."""
    record = orjson.loads(orjson.dumps(draw(st.sampled_from(_RECORDS[name][2]))))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(record)
        if not paths or not isinstance(record, dict):
            break
        *parents, last = draw(st.sampled_from(paths))
        parent = record
        for step in parents:
            parent = parent[step]
        how = draw(st.sampled_from(("replace", "replace", "delete", "add")))
        if how == "delete":
            del parent[last]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(("extra", "note", "segment", "outcome")))] = draw(values)
        else:
            parent[last] = draw(values)
    return record


@pytest.mark.parametrize("name", sorted(_RECORDS))
def test_the_example_records_are_valid_both_ways(name: str) -> None:
    is_valid, validate, records = _RECORDS[name]
    for record in records:
        assert is_valid(record), record
        validate(record)


@pytest.mark.parametrize("name", sorted(_RECORDS))
@given(data=st.data())
@fuzz(200)
def test_mutated_records_get_the_same_verdict(name: str, data: st.DataObject) -> None:
    is_valid, validate, _ = _RECORDS[name]
    record = data.draw(mutated_records(name))
    try:
        validate(record)
        expected = True
    except JsonSchemaValueException:
        expected = False
    assert is_valid(record) == expected, (name, record)
