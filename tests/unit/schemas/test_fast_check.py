"""The hot path's yes/no schema check (jsonschema-rs, schemas.registry.is_valid_check)
agrees with the fastjsonschema validators of the same files: on the demo traffic, on
broken envelopes and on arbitrary JSON.  Where it said yes and fastjsonschema no, the
worker would accept what the contract refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxt.traffic import TrafficGenerator, make_customers
from schemas import PAYLOAD_VALIDATORS, JsonSchemaValueException
from schemas import validate as v
from tests.support.fuzz import bad_envelopes, fuzz, json_values

CHANNELS = sorted(PAYLOAD_VALIDATORS)


def _slow(event: Any, channel: str) -> bool:
    try:
        v._validate_envelope_schema(event)
        PAYLOAD_VALIDATORS[channel](event["payload"])
    except JsonSchemaValueException:
        return False
    return True


def _fast(event: Any, channel: str) -> bool:
    return bool(v._envelope_is_valid(event) and v._PAYLOAD_IS_VALID[channel](event["payload"]))


def _agree(event: Any, channel: str) -> None:
    if not isinstance(event, dict):
        return
    if not v._envelope_is_valid(event):  # then only the slow path runs
        return
    assert _fast(event, channel) == _slow(event, channel), (channel, event)


def test_the_demo_traffic_is_valid_both_ways() -> None:
    generator = TrafficGenerator(make_customers(200, 3), 5)
    for channel, envelope in generator.take(2000):
        assert _fast(envelope, channel) and _slow(envelope, channel), envelope


@pytest.mark.parametrize("channel", CHANNELS)
@given(data=st.data())
@fuzz(300)
def test_broken_envelopes_get_the_same_verdict(channel: str, data: st.DataObject) -> None:
    raw = data.draw(bad_envelopes(channel))
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    _agree(event, channel)


@pytest.mark.parametrize("channel", CHANNELS)
@given(payload=json_values, data=st.data())
@fuzz(300)
def test_arbitrary_payloads_get_the_same_verdict(channel: str, payload: Any,
                                                 data: st.DataObject) -> None:
    generator = TrafficGenerator(make_customers(5, 1), data.draw(st.integers(0, 50)))
    _, envelope = next((c, e) for c, e in generator if c == channel)
    if isinstance(payload, dict):
        envelope["payload"] = {**envelope["payload"], **payload}
    else:
        envelope["payload"] = payload
    _agree(envelope, channel)
