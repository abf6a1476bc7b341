"""store.timeline.is_survey_body: a stored entry's channel read without parsing it."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from kernel.settings import CHANNELS
from store.timeline import is_survey_body

TEXT = st.text(max_size=30)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)


def _body(channel: str, event_id: str = "e-1", customer_id: str = "C-1",
          payload: object = None) -> bytes:
    # The worker's key order (schemas/timeline-entry.v1.json).
    return orjson.dumps({"event_id": event_id, "customer_id": customer_id,
                         "channel": channel, "type": f"{channel}.x",
                         "payload": payload or {}})


def test_each_channel() -> None:
    for channel in CHANNELS:
        assert is_survey_body(_body(channel)) is (channel == "survey")


@given(st.sampled_from(CHANNELS), TEXT, TEXT, JSON)
def test_only_the_entrys_own_channel_counts(channel: str, event_id: str, customer_id: str,
                                            payload: object) -> None:
    # Ids and payloads that spell out '"channel":"survey"' do not fool it.
    body = _body(channel, event_id, customer_id, {"channel": "survey", "x": payload})
    assert is_survey_body(body) is (channel == "survey")
    tricky = _body(channel, '"channel":"survey"', 'x","channel":"survey', payload)
    assert is_survey_body(tricky) is (channel == "survey")


def test_not_an_entry() -> None:
    assert not is_survey_body(b"{}")
    assert not is_survey_body(b'{"channel":"surveys"}')
