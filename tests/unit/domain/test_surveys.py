"""domain.surveys: the one bottom-2-box rule, in each form its callers use."""

from __future__ import annotations

from cxt.traffic import is_bottom_two_box
from domain.survey_metrics import metric_fields
from domain.surveys import (
    entry_is_bottom_2_box,
    is_bottom_2_box,
    payload_is_bottom_2_box,
    survey_is_bottom_2_box,
)


def test_the_rule() -> None:
    assert [s for s in range(0, 11) if is_bottom_2_box(s, 0)] == [0, 1]
    assert [s for s in range(1, 6) if is_bottom_2_box(s, 1)] == [1, 2]


def test_validated_payloads_take_the_contract_defaults() -> None:
    assert payload_is_bottom_2_box({"score": 2})
    assert not payload_is_bottom_2_box({"score": 3})
    assert not payload_is_bottom_2_box({"score": 2, "scale_min": 0, "scale_max": 10})


def test_defensive_forms_refuse_what_is_malformed() -> None:
    for payload in (None, [], {}, {"score": True}, {"score": "1"}, {"score": 1.0},
                    {"score": 1, "scale_min": "x"}, {"score": 1, "scale_min": [1]}):
        assert not survey_is_bottom_2_box(payload), payload
    survey = {"channel": "survey", "payload": {"score": 1, "scale_min": "1"}}
    assert entry_is_bottom_2_box(survey)
    assert not entry_is_bottom_2_box({"channel": "call", "payload": {"score": 1}})


def test_generator_and_counters_agree_on_generated_scales() -> None:
    for score in range(1, 6):
        payload = {"score": score, "scale_min": 1, "scale_max": 5}
        counted = any(f.endswith("\x1fb2") for f in metric_fields("call", "q", "a", score, 1, 5))
        assert is_bottom_two_box(payload) is counted is (score <= 2)
