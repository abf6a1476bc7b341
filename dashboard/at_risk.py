"""Whether the customer on the line is at risk, and why, for the agent page's banner (pure).

A customer is at risk while the advisory group still works an alert of theirs
(any kind, not resolved) or when their own words scored negative in the last
few days (`[at_risk] within_days` of config/agent_context.toml).  The agent
reads the reasons before saying hello, so each is one plain sentence built
from what the alert or entry already carries: no second look-up, no model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from domain.alerts import OPEN_STATUSES
from domain.contacts import contact_key, parse_ms

DAY_MS = 86_400_000
BOTTOM_2_BOX, NEGATIVE_INTERACTION = "bottom_2_box", "negative_interaction"
NEGATIVE = "negative"
# The banner is read in a glance: a customer with a bad week gets the newest few
# contacts as sentences and a count for the rest.
MAX_NEGATIVE_REASONS = 3
MAX_NEGATIVE_LISTED = 10
_QUOTE_CHARS = 80  # customer words quoted in a reason are cut here; the timeline has them whole


def at_risk(*, alerts: Iterable[Any], entries: Iterable[Any], now_ms: int,
            within_days: int) -> dict | None:
    """`{"open_alerts", "negative_recent", "reasons"}`, or None when not at risk.

    `alerts` are the customer's alerts in any status, `entries` the timeline
    newest first.  `open_alerts` are the unresolved ones, newest first, each
    `{alert_id, kind, status, raised_at, reasons}`; `negative_recent` the
    contacts of the last `within_days` days whose newest scored entry is
    negative, newest first, each `{event_id, channel, type, occurred_at, score}`;
    `reasons` one sentence per open alert, then per negative contact.
    """
    open_alerts = sorted(
        (a for a in alerts if isinstance(a, dict) and a.get("status") in OPEN_STATUSES),
        key=lambda a: str(a.get("raised_at") or ""), reverse=True)
    briefs = [_alert_brief(a) for a in open_alerts]
    negative = negative_recent(entries, now_ms=now_ms, within_days=within_days)
    if not briefs and not negative:
        return None
    reasons = [_alert_sentence(b) for b in briefs]
    for item in negative[:MAX_NEGATIVE_REASONS]:
        reasons.append(_negative_sentence(item, now_ms))
    if len(negative) > MAX_NEGATIVE_REASONS:
        more = len(negative) - MAX_NEGATIVE_REASONS
        reasons.append(f"{more} more negative contact{'s' if more != 1 else ''} "
                       f"in the last {_days(within_days)}")
    return {"open_alerts": briefs, "negative_recent": negative, "reasons": reasons}


# --------------------------------------------------------------------------- open alerts


def _alert_brief(alert: Mapping[str, Any]) -> dict:
    kind = alert.get("kind") or BOTTOM_2_BOX  # alerts stored before kinds existed
    reasons = (signal_reasons(alert.get("signals"), alert.get("intent"))
               if kind == NEGATIVE_INTERACTION else _survey_reasons(alert))
    return {"alert_id": alert.get("alert_id"), "kind": kind, "status": alert.get("status"),
            "raised_at": alert.get("raised_at"), "reasons": reasons}


def _alert_sentence(brief: Mapping[str, Any]) -> str:
    kind = str(brief["kind"]).replace("_", "-")
    status = "" if brief["status"] == "open" else f" ({brief['status']})"
    head = f"Open {kind} alert{status}"
    return f"{head}: {', '.join(brief['reasons'])}" if brief["reasons"] else head


def signal_reasons(signals: Any, intent: Any = None) -> list[str]:
    """Each signal of a negative-interaction alert as a few words, oldest first, each
    phrase once ("said 'ombudsman' on chat", "3rd contact about billing")."""
    out: list[str] = []
    for signal in signals if isinstance(signals, list) else []:
        if isinstance(signal, dict):
            phrase = signal_phrase(signal, intent)
            if phrase not in out:
                out.append(phrase)
    return out


def signal_phrase(signal: Mapping[str, Any], intent: Any = None) -> str:
    """One signal in words; a rule this page does not know is shown by its name."""
    rule, channel = signal.get("rule"), signal.get("channel") or "a contact"
    count, detail, score = signal.get("count"), signal.get("detail"), signal.get("score")
    if rule == "escalation_language" and isinstance(detail, str) and detail:
        phrase = _quoted(detail.removeprefix("said ").strip("'\""))
        return f"said '{phrase}' on {channel}"
    if rule == "negative_sentiment":
        return f"negative words on {channel}" + (f" ({score:+.2f})" if _number(score) else "")
    if rule == "repeat_contact" and _whole(count):
        about = f" about {intent}" if isinstance(intent, str) and intent else ""
        days = signal.get("days")
        return f"{ordinal(count)} contact{about}" + (f" in {days} days" if _whole(days) else "")
    if rule == "many_transfers" and _whole(count):
        return f"{channel} transferred {count} times"
    if rule == "long_wait" and _whole(count):
        return f"waited {_wait(count)} on {channel}"
    if rule == "abandoned_then_contact":
        return f"came back on {channel} after an abandoned call"
    words = str(rule or "signal").replace("_", " ")
    return f"{words}: {_quoted(detail)}" if isinstance(detail, str) and detail else words


def _survey_reasons(alert: Mapping[str, Any]) -> list[str]:
    score, scale_max = alert.get("score"), alert.get("scale_max")
    if not _whole(score):
        return []
    channel = alert.get("contact_channel")
    rated = f" their {channel} contact" if isinstance(channel, str) and channel else ""
    out = [f"scored{rated} {score}/{scale_max if _whole(scale_max) else '?'}"]
    comment = alert.get("comment")
    if isinstance(comment, str) and comment.strip():
        out.append(f"said '{_quoted(comment)}'")
    return out


# --------------------------------------------------------------------------- negative entries


def negative_recent(entries: Iterable[Any], *, now_ms: int, within_days: int) -> list[dict]:
    """Contacts of the last `within_days` days whose newest scored entry is negative,
    newest first: one chat of ten angry lines is one contact, and a chat that
    ended calmer is no longer counted against the customer."""
    oldest = now_ms - within_days * DAY_MS
    seen: set[tuple[str, str]] = set()
    out: list[dict] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        sentiment = entry.get("sentiment")
        if not isinstance(sentiment, dict) or not _number(sentiment.get("score")):
            continue
        occurred = parse_ms(entry.get("occurred_at"))
        if occurred is None or occurred < oldest or occurred > now_ms + DAY_MS:
            continue
        key = contact_key(entry, social=True) or ("event", str(entry.get("event_id")))
        if key in seen:
            continue
        seen.add(key)
        if sentiment.get("label") != NEGATIVE or len(out) >= MAX_NEGATIVE_LISTED:
            continue
        out.append({"event_id": entry.get("event_id"), "channel": entry.get("channel"),
                    "type": entry.get("type"), "occurred_at": entry.get("occurred_at"),
                    "score": sentiment["score"]})
    return out


def _negative_sentence(item: Mapping[str, Any], now_ms: int) -> str:
    occurred = parse_ms(item.get("occurred_at"))
    when = f" {ago(now_ms - occurred)}" if occurred is not None else ""
    return f"Negative {item.get('channel') or 'contact'}{when} ({item['score']:+.2f})"


# --------------------------------------------------------------------------- words


def ago(elapsed_ms: int) -> str:
    """"just now", "12 min ago", "2 h ago", "3 days ago"."""
    minutes = max(0, elapsed_ms) // 60_000
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _days(n: int) -> str:
    return "day" if n == 1 else f"{n} days"


def _wait(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


def _quoted(text: Any) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= _QUOTE_CHARS else words[:_QUOTE_CHARS - 1] + "\u2026"


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
