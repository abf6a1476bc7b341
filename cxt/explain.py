"""`cxt rules explain`: what the worker would do with each sample survey.

Each line is checked by the worker's own validation (schemas/validate.py), so
the answer is the worker's: rejected (dead-lettered, no alert), accepted but
not bottom-2-box (no alert), or an alert with the category and the rule that
decided it.  A line may be a whole envelope or just a survey payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from domain.rules import Rules
from domain.surveys import is_bottom_2_box
from schemas.validate import Interaction, check_interaction, survey_scale

# A payload alone gets these envelope fields, so only the payload is judged.
_SAMPLE_ENVELOPE = {"event_id": "explain-sample", "type": "survey.response",
                    "occurred_at": "2026-01-01T00:00:00Z", "customer_id": "C-sample"}
MAX_LINE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Explained:
    line_no: int
    text: str
    bad: bool  # not a survey at all (the command exits 1 when any line is)


def explain_lines(rules: Rules, lines: Iterable[bytes]) -> list[Explained]:
    out = []
    for number, raw in enumerate(lines, 1):
        if raw.strip():
            out.append(explain_line(rules, number, raw))
    return out


def explain_line(rules: Rules, number: int, raw: bytes) -> Explained:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Explained(number, f"not UTF-8 (byte {exc.start + 1})", True)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Explained(number, "not valid JSON", True)
    if not isinstance(value, dict):
        return Explained(number, "not a JSON object (a survey envelope or payload)", True)
    envelope = value if "payload" in value else {**_SAMPLE_ENVELOPE, "payload": value}
    checked = check_interaction(orjson.dumps(envelope), "survey", max_bytes=MAX_LINE_BYTES)
    if not isinstance(checked, Interaction):
        return Explained(number, f"no alert: the worker rejects it ({checked.reason}: "
                         f"{checked.message})", False)
    return Explained(number, _verdict(rules, checked.payload), False)


def _verdict(rules: Rules, payload: dict) -> str:
    low, high = survey_scale(payload)
    comment = f"  | {str(payload.get('comment') or '')[:60]!r}"
    if not is_bottom_2_box(payload["score"], low):
        return (f"no alert: score {payload['score']} is not bottom-2-box "
                f"({low}-{low + 1} of {low}..{high}){comment}")
    verdict = rules.classify(payload, None)
    why = "; ".join(verdict.matched) or "no rule matched"
    return f"alert, {verdict.category:<19} rule {verdict.rule or '-'}: {why}{comment}"
