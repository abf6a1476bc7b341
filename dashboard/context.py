"""The agent view's context for one customer contact (pure: no I/O).

When a call, chat or e-mail reaches an agent, the agent needs the few entries
that matter for *this* contact before the hundreds that do not: what the
customer said about the same problem, and anything the advisory group is
still chasing.  `build_context` puts the timeline in that order and adds the
prompts of `dashboard.prompts`.

It runs on every contact and API call over timelines of up to ~1,000 entries,
so it is one linear pass with a keyword pattern compiled once per keyword list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from dashboard.prompts import (
    AgentConfig,
    evaluate_prompts,
    normalise_intent,
    resolve_intent,
)
from streams.validate import is_bottom_2_box, survey_scale

OPEN_STATUSES = ("open", "escalated", "acknowledged")  # acknowledged is still being worked
INTENT, ALERT, OTHER = "intent", "alert", "other"  # the `relevance` groups, in display order
FLAG_OPEN_ALERT = "open_alert"  # the survey of an open alert, or the contact it rates
FLAG_BOTTOM_2_BOX = "bottom_2_box"  # a survey scored in the two lowest points of its scale
OPEN_ALERT_FIELDS = ("alert_id", "status", "score", "scale_max", "raised_at", "comment",
                     "category", "survey_event_id", "contact_id")
_TEXT_FIELDS = ("subject", "comment", "text")


# --------------------------------------------------------------------------- relevance


@lru_cache(maxsize=256)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    """One alternation for all of an intent's keywords, matching at the start of a word.

    A word start rather than a whole word so that "bill" also finds "billing"
    and "charge" finds "charged"; spaces inside a keyword match any white space.
    """
    bodies = [r"\s+".join(re.escape(word) for word in k.split()) for k in keywords if k.split()]
    if not bodies:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(bodies)})", re.IGNORECASE)


def _pattern_for(intent: str, config: AgentConfig) -> re.Pattern[str] | None:
    return _keyword_pattern(config.relevance.get(intent, ()))


class _Matcher:
    """Relevance tests for one intent, with the folding of repeated values remembered.

    Timelines repeat a handful of intent and menu names thousands of times, so
    each distinct spelling is folded (trimmed, lower-cased) once per request.
    """

    __slots__ = ("folded", "intent", "pattern")

    def __init__(self, intent: str, config: AgentConfig) -> None:
        self.intent = intent
        self.pattern = _pattern_for(intent, config)
        self.folded: dict[str, str] = {}

    def _is_intent(self, value: Any) -> bool:
        if value.__class__ is not str:
            return False
        if value == self.intent:
            return True
        folded = self.folded.get(value)
        if folded is None:
            folded = self.folded[value] = value.strip().casefold()
        return folded == self.intent

    def directly(self, entry: Mapping[str, Any]) -> bool:
        payload = entry.get("payload")
        if payload.__class__ is not dict:
            return False
        if self._is_intent(payload.get("intent")):
            return True
        path = payload.get("ivr_path")
        if path.__class__ is list:
            for step in path:
                if self._is_intent(step):
                    return True
        pattern = self.pattern
        if pattern is None:
            return False
        for field in _TEXT_FIELDS:
            text = payload.get(field)
            if text.__class__ is str and pattern.search(text):
                return True
        codes = payload.get("reason_codes")
        if codes.__class__ is list:
            # Codes are snake_case: "delivery_delay" should be found by "delay".
            for code in codes:
                if code.__class__ is str and pattern.search(code.replace("_", " ")):
                    return True
        return False


def _rated_id(entry: Mapping[str, Any]) -> str | None:
    """The event_id a survey rates, None for anything else."""
    if entry.get("channel") != "survey":
        return None
    payload = entry.get("payload")
    rated = payload.get("contact_id") if isinstance(payload, dict) else None
    return rated if isinstance(rated, str) and rated else None


def is_relevant(entry: dict, intent: str | None, config: AgentConfig, *,
                by_id: Mapping[str, dict] | None = None) -> bool:
    """Whether `entry` is about `intent`.

    Its payload's intent or IVR path names the intent, or one of the intent's
    keywords starts a word of its subject, comment, text or reason codes.  A
    survey is also relevant when the contact it rates is: pass the timeline's
    entries by event_id as `by_id` to look that contact up.
    """
    intent = normalise_intent(intent)
    if intent is None or not isinstance(entry, dict):
        return False
    matcher = _Matcher(intent, config)
    if matcher.directly(entry):
        return True
    rated_id = _rated_id(entry)
    rated = by_id.get(rated_id) if by_id is not None and rated_id is not None else None
    return isinstance(rated, dict) and matcher.directly(rated)


# --------------------------------------------------------------------------- ranking


def _is_bottom_2_box_survey(entry: Mapping[str, Any]) -> bool:
    if entry.get("channel") != "survey":
        return False
    payload = entry.get("payload")
    if not isinstance(payload, dict):
        return False
    score = payload.get("score")
    if not isinstance(score, int) or isinstance(score, bool):
        return False
    try:
        return is_bottom_2_box(score, survey_scale(payload)[0])
    except (TypeError, ValueError):
        return False


def _open_alert_ids(open_alerts: Iterable[dict]) -> set[str]:
    """Event ids tied to an open alert: its survey and the contact that survey rates."""
    ids: set[str] = set()
    for alert in open_alerts:
        if not isinstance(alert, dict) or alert.get("status", "open") not in OPEN_STATUSES:
            continue
        for key in ("survey_event_id", "contact_id"):
            value = alert.get(key)
            if isinstance(value, str) and value:
                ids.add(value)
    return ids


def _order(
    entries: list[dict],
    *,
    intent: str | None,
    contact_event_id: str | None,
    open_alerts: list[dict],
    config: AgentConfig,
) -> tuple[list[tuple[dict, str, bool]], int]:
    """(entry, group, tied to an open alert) in the agent's order, and the size of group one.

    Entries are not copied here: a request shows only the first few of ~1,000.
    """
    intent = normalise_intent(intent)
    tied = _open_alert_ids(open_alerts)
    kept = [e for e in entries if isinstance(e, dict)]
    if intent is None:
        direct = [False] * len(kept)
        relevant_ids: set[Any] = set()
    else:
        matcher = _Matcher(intent, config)
        direct = [matcher.directly(e) for e in kept]
        # Surveys follow the contact they rate, which may be anywhere in the
        # timeline (the trigger included), hence a first pass over all entries.
        relevant_ids = {e.get("event_id") for e, hit in zip(kept, direct, strict=True) if hit}
    first: list[tuple[dict, str, bool]] = []
    second: list[tuple[dict, str, bool]] = []
    third: list[tuple[dict, str, bool]] = []
    for entry, hit in zip(kept, direct, strict=True):
        event_id = entry.get("event_id")
        if contact_event_id is not None and event_id == contact_event_id:
            continue
        if not hit and relevant_ids and entry.get("channel") == "survey":
            rated_id = _rated_id(entry)
            hit = rated_id is not None and rated_id in relevant_ids
        is_tied = event_id in tied
        if hit:
            first.append((entry, INTENT, is_tied))
        elif is_tied:
            second.append((entry, ALERT, True))
        else:
            third.append((entry, OTHER, False))
    return [*first, *second, *third], len(first)


def _annotated(entry: dict, group: str, tied: bool) -> dict:
    flags = [FLAG_OPEN_ALERT] if tied else []
    if _is_bottom_2_box_survey(entry):
        flags.append(FLAG_BOTTOM_2_BOX)
    return {**entry, "relevance": group, "flags": flags}


def rank(
    entries: list[dict],
    *,
    intent: str | None,
    contact_event_id: str | None,
    open_alerts: list[dict],
    config: AgentConfig,
) -> list[dict]:
    """Entries in the agent's order, each a copy with "relevance" and "flags" added.

    Group "intent" (relevant to the intent) newest first, then "alert" (tied to
    an open alert and not already shown), then "other" newest first; `entries`
    come newest first and keep that order inside each group.  The contact being
    taken (`contact_event_id`) is left out: the agent has it already.  Flags:
    "open_alert" (the survey of an open alert or the contact it rates) and
    "bottom_2_box" (a survey scored in the two lowest points of its scale).
    """
    ordered, _ = _order(entries, intent=intent, contact_event_id=contact_event_id,
                        open_alerts=open_alerts, config=config)
    return [_annotated(*item) for item in ordered]


# --------------------------------------------------------------------------- the context


def open_alert_summary(alert: dict) -> dict:
    """What the agent view shows of an open alert."""
    return {key: alert.get(key) for key in OPEN_ALERT_FIELDS}


def build_context(
    *,
    customer_id: str,
    profile: dict | None,
    entries: list[dict],
    alerts: list[dict],
    intent: str | None,
    contact: dict | None,
    config: AgentConfig,
    now_ms: int,
    limit: int,
) -> dict:
    """The agent context (see the dashboard spec) for one customer and contact.

    `entries` is the timeline newest first, `alerts` the customer's alerts in
    any status (only open ones are shown), `intent` the intent asked for; when
    None the contact's own intent is used.  `events` holds at most `limit`
    entries; `counts` tell how many there were before the cut.
    """
    intent = resolve_intent(intent, contact)
    open_alerts = [a for a in alerts if isinstance(a, dict) and a.get("status") in OPEN_STATUSES]
    # raised_at is always the worker's UTC RFC 3339, so text order is time order.
    open_alerts.sort(key=lambda a: str(a.get("raised_at") or ""), reverse=True)
    contact_event_id = contact.get("event_id") if isinstance(contact, dict) else None
    ordered, relevant = _order(entries, intent=intent, contact_event_id=contact_event_id,
                               open_alerts=open_alerts, config=config)
    prompts = evaluate_prompts(config, customer=profile, entries=entries, intent=intent,
                               contact=contact, now_ms=now_ms)
    return {
        "customer_id": customer_id,
        "customer": profile,
        "intent": intent,
        "contact": contact,
        "prompts": prompts,
        "open_alerts": [open_alert_summary(a) for a in open_alerts],
        "events": [_annotated(*item) for item in ordered[:max(0, limit)]],
        "counts": {"total": len(ordered), "relevant": relevant},
    }
