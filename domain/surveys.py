"""The bottom-2-box rule: which survey scores raise an alert and count as "bottom-2".

The one place the rule is decided; the worker (alerts), the survey counters
(`domain.survey_metrics`), the agent view and its prompts, the CRM summary feed,
`cxt explain` and the traffic generator all ask here.  A survey's scale and its
defaults are the contract's (`schemas.validate.survey_scale`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.validate import survey_scale


def is_bottom_2_box(score: int, scale_min: int) -> bool:
    """True when `score` is one of the two lowest points of its scale."""
    return scale_min <= score <= scale_min + 1


def payload_is_bottom_2_box(payload: dict) -> bool:
    """The rule for a validated survey payload (the worker's hot path: no checks)."""
    return is_bottom_2_box(payload["score"], survey_scale(payload)[0])


def survey_is_bottom_2_box(payload: Any) -> bool:
    """The rule for a survey payload read defensively: False for anything malformed."""
    if not isinstance(payload, dict):
        return False
    score = payload.get("score")
    if not isinstance(score, int) or isinstance(score, bool):
        return False
    try:
        return is_bottom_2_box(score, survey_scale(payload)[0])
    except (TypeError, ValueError):
        return False


def entry_is_bottom_2_box(entry: Mapping[str, Any]) -> bool:
    """True for a timeline entry that is a bottom-2-box survey (read defensively)."""
    return entry.get("channel") == "survey" and survey_is_bottom_2_box(entry.get("payload"))
