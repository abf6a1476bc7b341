"""Signals that an interaction went badly, read from the interaction alone.

Each signal is one rule of config/signals.toml that fired on one timeline entry
(docs/negative-interactions.md).  This module finds the ones an entry shows on
its own: negative sentiment, escalation language, many transfers, a long wait.
The two that need earlier contacts (repeat contact, a contact after an abandoned
call) are decided by the worker from stored state; `is_inbound_contact` and
`is_abandoned` say which entries count for them.  Pure functions; entries are
read defensively: a malformed field means no signal, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from domain.contacts import contact_key
from domain.sentiment import OUTBOUND, Sentiment, customer_text
from domain.signal_config import SignalConfig

NEGATIVE_SENTIMENT = "negative_sentiment"
ESCALATION = "escalation_language"
REPEAT = "repeat_contact"
TRANSFERS = "many_transfers"
WAIT = "long_wait"
ABANDONED = "abandoned_then_contact"
RULES = (NEGATIVE_SENTIMENT, ESCALATION, REPEAT, TRANSFERS, WAIT, ABANDONED)

CONTACT_CHANNELS = ("call", "chat", "email", "social")
_WAITING_CHANNELS = ("call", "chat")


@dataclass(frozen=True, slots=True)
class Signal:
    rule: str
    event_id: str
    channel: str
    contact: str  # "<channel>:<id>" or "event:<event_id>" (contact_of)
    occurred_at: str
    score: float | None = None
    count: int | None = None
    weight: float | None = None
    detail: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """One signal per rule and contact: a call's started and ended events, or a
        redelivered event, add it once."""
        return self.rule, self.contact

    def as_json(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies, at ten times the cost (once per signal
        # on the worker's hot path).
        found: dict[str, Any] = {"rule": self.rule, "event_id": self.event_id,
                                 "channel": self.channel, "contact": self.contact,
                                 "occurred_at": self.occurred_at}
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found


_OPTIONAL = ("score", "count", "weight", "detail")


def contact_of(entry: Any) -> str:
    """The contact an entry belongs to, as signals name it: "call:CALL-9", "event:<id>"."""
    if not isinstance(entry, dict):
        return "event:"
    key = contact_key(entry, social=True)
    if key is not None:
        return f"{key[0]}:{key[1]}"
    return f"event:{_text(entry.get('event_id'))}"


def entry_signals(entry: Any, sentiment: Sentiment | None, config: SignalConfig, *,
                  text: str | None = None) -> list[Signal]:
    """The signals this entry shows on its own, given its sentiment (domain.sentiment.score_entry).

    `text` is the entry's customer_text when the caller already has it (at the
    config's max_chars); otherwise it is read again from the payload.
    """
    if not isinstance(entry, dict):
        return []
    payload = entry.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    channel = _text(entry.get("channel"))
    found: list[Signal] = []

    def at() -> tuple[str, str, str, str]:  # only once a signal fires: most entries show none
        return (_text(entry.get("event_id")), channel, contact_of(entry),
                _text(entry.get("occurred_at")))

    s = config.sentiment
    if s.enabled and sentiment is not None:
        weight = (s.public_social_weight
                  if channel == "social" and payload.get("public") is True else None)
        weighted = (sentiment.score if weight is None
                    else max(-1.0, min(1.0, sentiment.score * weight)))
        if weighted <= s.negative_at_or_below:
            detail = (None if weight is None else
                      f"public post: {sentiment.score:.2f} x {weight:g} = {weighted:.2f}")
            found.append(Signal(NEGATIVE_SENTIMENT, *at(), score=round(sentiment.score, 3),
                                weight=weight, detail=detail))

    e = config.escalation
    if e.enabled and e.any_phrase is not None:
        words = text if text is not None else customer_text(channel, payload, s.max_chars)
        said = e.said(words) if words else None
        if said:
            found.append(Signal(ESCALATION, *at(), detail=f"said {said!r}"))

    o = config.operational
    if o.enabled:
        transfers = payload.get("transfers")
        if channel == "call" and type(transfers) is int and transfers >= o.min_transfers:
            found.append(Signal(TRANSFERS, *at(), count=transfers))
        wait = payload.get("wait_seconds")
        if (channel in _WAITING_CHANNELS and isinstance(wait, int | float)
                and not isinstance(wait, bool) and math.isfinite(wait)
                and wait > o.wait_over_seconds):
            found.append(Signal(WAIT, *at(), count=int(wait)))
    return found


def is_inbound_contact(entry: Any) -> bool:
    """Whether the entry is the customer reaching us (counts for repeat contact and
    for a contact after an abandoned call): not a survey, not our outbound call or mail."""
    if not isinstance(entry, dict) or entry.get("channel") not in CONTACT_CHANNELS:
        return False
    payload = entry.get("payload")
    return not (isinstance(payload, dict) and payload.get("direction") == OUTBOUND)


def is_abandoned(entry: Any) -> bool:
    """A call the customer gave up on (in the queue or the IVR)."""
    if not isinstance(entry, dict) or entry.get("channel") != "call":
        return False
    payload = entry.get("payload")
    outcome = payload.get("outcome") if isinstance(payload, dict) else None
    return isinstance(outcome, str) and outcome.strip().casefold() == "abandoned"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
