"""The agent view's context for one customer contact (pure: no I/O).

When a call, chat or e-mail reaches an agent, the agent needs the few entries
that matter for *this* contact before the hundreds that do not: what the
customer said about the same problem, and anything the advisory group is
still chasing.  `build_context` puts the timeline in that order, shows the
entries of one call or chat as one contact (`merge_contacts`), labels the
customer record's fields (`display_fields`), masks phones and e-mails (`mask`:
the agent checks identity, it never needs the whole number), and adds the
prompts of `dashboard.prompts` and the "at risk" reasons of `dashboard.at_risk`.
What the customer told us themselves comes first on the page: their newest notes
and their preferences, with their contact hours read at this moment
(`own_words`, `preferences_view`); the prompts obey those preferences.

It runs on every contact and API call, over the part of the timeline the agent
view reads (dashboard.agent_view: the digest, or a whole timeline of up to ~1,000
entries), so it is one linear pass with a keyword pattern compiled once per keyword
list.  What makes an entry relevant to an intent is domain.relevance's, shared with
the worker's index of relevant contacts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime
from typing import Any

from dashboard.at_risk import at_risk
from dashboard.prompts import (
    NOT_FIELDS,
    AgentConfig,
    CustomerField,
    decide_prompts,
    normalise_intent,
    resolve_intent,
)
from domain.alerts import OPEN_STATUSES
from domain.contact_hours import contact_hours_now
from domain.contacts import contact_key, parse_ms
from domain.rated import contact_ids
from domain.relevance import ONE_ITEM_CHANNELS, Matcher
from domain.surveys import entry_is_bottom_2_box

INTENT, ALERT, OTHER = "intent", "alert", "other"  # the `relevance` groups, in display order
FLAG_OPEN_ALERT = "open_alert"  # the survey of an open alert, or the contact it rates
FLAG_BOTTOM_2_BOX = "bottom_2_box"  # a survey scored in the two lowest points of its scale
OPEN_ALERT_FIELDS = ("alert_id", "kind", "status", "score", "scale_max", "raised_at",
                     "comment", "category", "survey_event_id", "contact_id")
# Channels whose entries of one contact (started, ended) are shown as one item
# (domain.relevance's, which the worker's index of relevant contacts follows).
MERGED_CHANNELS = ONE_ITEM_CHANNELS
MASK_DOT = "\u2022"
# The agent reads the newest few notes during a contact; the customer's self-service
# page and the export have them all.
NOTES_SHOWN = 5
_NOTE_FIELDS = ("note_id", "text", "added_at")
# The worker's bookkeeping beside the customer's preferences (store/self_service.py).
_PREFERENCE_INTERNALS = frozenset({"event_id", "occurred_ms"})


# --------------------------------------------------------------------------- relevance


def _rated_id(entry: Mapping[str, Any]) -> str | None:
    """The event_id a survey rates, None for anything else."""
    if entry.get("channel") != "survey":
        return None
    payload = entry.get("payload")
    rated = payload.get("contact_id") if isinstance(payload, dict) else None
    return rated if isinstance(rated, str) and rated else None


def entries_by_id(entries: Iterable[dict]) -> dict[str, dict]:
    """Entries by every id a survey's `contact_id` may name them by (event id, channel
    ids); the latest-occurred wins a shared channel id, as in the worker's lookup."""
    out: dict[str, dict] = {}
    for entry in sorted(entries, key=lambda e: str(e.get("occurred_at"))):
        for key in (entry.get("event_id"), *contact_ids(entry)):
            if isinstance(key, str):
                out[key] = entry
    return out


def is_relevant(entry: dict, intent: str | None, config: AgentConfig, *,
                by_id: Mapping[str, dict] | None = None) -> bool:
    """Whether `entry` is about `intent`.

    Its payload's intent or IVR path names the intent, or one of the intent's
    keywords starts a word of its subject, comment, text or reason codes.  A
    survey is also relevant when the contact it rates is: pass the timeline's
    `entries_by_id` as `by_id` to look that contact up.
    """
    intent = normalise_intent(intent)
    if intent is None or not isinstance(entry, dict):
        return False
    matcher = Matcher(intent, config.relevance)
    if matcher.directly(entry):
        return True
    rated_id = _rated_id(entry)
    rated = by_id.get(rated_id) if by_id is not None and rated_id is not None else None
    return isinstance(rated, dict) and matcher.directly(rated)


# --------------------------------------------------------------------------- ranking


def open_alert_ids(open_alerts: Iterable[dict]) -> set[str]:
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
) -> tuple[list[tuple[list[dict], str, bool]], int]:
    """(a contact's entries, group, tied to an open alert) in the agent's order, and the
    size of group one.

    Entries are not copied here: a request shows only the first few of ~1,000.
    """
    intent = normalise_intent(intent)
    tied = open_alert_ids(open_alerts)
    contacts = merge_contacts(entries)
    if intent is None:
        direct = [False] * len(contacts)
        relevant_ids: set[Any] = set()
    else:
        matcher = Matcher(intent, config.relevance)
        directly = matcher.directly
        direct = [any(map(directly, c)) for c in contacts]
        # Surveys follow the contact they rate, which may be anywhere in the
        # timeline (the trigger included), hence a first pass over all entries.
        relevant_ids = {i for c, hit in zip(contacts, direct, strict=True) if hit
                        for i in _ids(c)}
    first: list[tuple[list[dict], str, bool]] = []
    second: list[tuple[list[dict], str, bool]] = []
    third: list[tuple[list[dict], str, bool]] = []
    taken = frozenset(()) if contact_event_id is None else frozenset((contact_event_id,))
    # Most contacts are neither taken nor tied: one test of both tells them apart.
    marked = taken | tied
    for members, hit in zip(contacts, direct, strict=True):
        is_marked = _named(members, marked)
        if is_marked and _named(members, taken):
            continue  # the contact being taken, all its entries: the agent has it already
        if not hit and relevant_ids and len(members) == 1:
            rated_id = _rated_id(members[0])
            hit = rated_id is not None and rated_id in relevant_ids
        is_tied = is_marked and _named(members, tied)
        if hit:
            first.append((members, INTENT, is_tied))
        elif is_tied:
            second.append((members, ALERT, True))
        else:
            third.append((members, OTHER, False))
    return [*first, *second, *third], len(first)


def _ids(members: list[dict]) -> set[Any]:
    """What a survey or an alert may name a contact by: its entries' event ids and
    the channel's own ids (domain.rated, the worker's own rule for a `contact_id`)."""
    ids: set[Any] = {e.get("event_id") for e in members}
    for entry in members:
        ids.update(contact_ids(entry))
    return ids


def _named(members: list[dict], wanted: AbstractSet[Any]) -> bool:
    """Whether `_ids(members)` holds one of `wanted`, without building that set: the test
    runs on every contact of every request, and `wanted` is small or empty."""
    if not wanted:
        return False
    return any(entry.get("event_id") in wanted or not wanted.isdisjoint(contact_ids(entry))
               for entry in members)


def merge_contacts(entries: Iterable[Any]) -> list[list[dict]]:
    """The timeline as contacts: the entries of one call (call_id) or chat (chat_id)
    together, newest first, at the place of the newest; any other entry alone.

    One pass; `entries` come newest first and non-dicts are dropped.
    """
    contacts: list[list[dict]] = []
    by_key: dict[tuple[str, str], list[dict]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        key = contact_key(entry) if entry.get("channel") in MERGED_CHANNELS else None
        if key is None or key[0] == "event":
            contacts.append([entry])
        elif (members := by_key.get(key)) is not None:
            members.append(entry)
        else:
            by_key[key] = members = [entry]
            contacts.append(members)
    return contacts


def merged_contact(members: list[dict]) -> dict:
    """One item for the entries of one call or chat (newest first): the newest entry,
    its payload completed by the older ones', and `merged` with the contact's span.

    `merged`: event_ids and types (newest first), started_at (the oldest entry's
    occurred_at), ended_at (the newest *.ended, or None while under way),
    duration_seconds (handle_seconds of the end, else ended - started; None when
    unknown) and outcome (None when not ended or not given).
    """
    newest = members[0]
    payload: dict[str, Any] = {}
    for member in reversed(members):  # newer values win, a null never hides an older one
        if isinstance(member.get("payload"), dict):
            payload.update({k: v for k, v in member["payload"].items() if v is not None})
    ended = next((m for m in members if str(m.get("type", "")).endswith(".ended")), None)
    started_at = members[-1].get("occurred_at")
    ended_at = ended.get("occurred_at") if ended is not None else None
    return {
        **newest,
        "payload": payload,
        "merged": {
            "event_ids": [m.get("event_id") for m in members],
            "types": [m.get("type") for m in members],
            "started_at": started_at,
            "ended_at": ended_at,
            "duration_seconds": _duration(ended, started_at, ended_at),
            "outcome": payload.get("outcome") if ended is not None else None,
        },
    }


def _duration(ended: dict | None, started_at: Any, ended_at: Any) -> float | None:
    if ended is None:
        return None
    handle = ended.get("payload", {}).get("handle_seconds") \
        if isinstance(ended.get("payload"), dict) else None
    if isinstance(handle, int | float) and not isinstance(handle, bool) and handle >= 0:
        return handle
    start, end = parse_ms(started_at), parse_ms(ended_at)
    if start is None or end is None or end < start:
        return None
    return (end - start) / 1000


def _annotated(members: list[dict], group: str, tied: bool) -> dict:
    entry = members[0] if len(members) == 1 else merged_contact(members)
    flags = [FLAG_OPEN_ALERT] if tied else []
    if entry_is_bottom_2_box(entry):
        flags.append(FLAG_BOTTOM_2_BOX)
    return {**_without_identity(entry), "relevance": group, "flags": flags}


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
    come newest first and keep that order inside each group.  The entries of one
    call or chat are one item (see `merged_contact`).  The contact being taken
    (`contact_event_id`, with the other entries of its call) is left out: the
    agent has it already.  Entries lose their `identity` (see `_without_identity`).  Flags:
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
    notes: list[dict] | None = None,
    preferences: dict | None = None,
) -> dict:
    """The agent context (see the dashboard spec) for one customer and contact.

    `entries` is the timeline newest first, `alerts` the customer's alerts in
    any status (only open ones are shown), `intent` the intent asked for; when
    None the contact's own intent is used.  `events` holds at most `limit`
    entries; `counts` tell how many there were before the cut.  `notes` (newest
    first) and `preferences` are the customer's own (store.self_service).
    """
    intent = resolve_intent(intent, contact)
    open_alerts = [a for a in alerts if isinstance(a, dict) and a.get("status") in OPEN_STATUSES]
    # raised_at is always the worker's UTC RFC 3339, so text order is time order.
    open_alerts.sort(key=lambda a: str(a.get("raised_at") or ""), reverse=True)
    contact_event_id = contact.get("event_id") if isinstance(contact, dict) else None
    ordered, relevant = _order(entries, intent=intent, contact_event_id=contact_event_id,
                               open_alerts=open_alerts, config=config)
    words = own_words(notes or [], preferences, now_ms)
    prompts = decide_prompts(config, customer=profile, entries=entries, intent=intent,
                             contact=contact, now_ms=now_ms, preferences=words["preferences"])
    return {
        "customer_id": customer_id,
        "customer": masked_customer(profile),
        "customer_fields": display_fields(profile, config.fields, now_ms),
        "intent": intent,
        "contact": _without_identity(contact) if isinstance(contact, dict) else contact,
        **words,
        "prompts": prompts.shown,
        "prompts_held_back": prompts.held_back,
        "open_alerts": [open_alert_summary(a) for a in open_alerts],
        "at_risk": at_risk(alerts=open_alerts, entries=entries, now_ms=now_ms,
                           within_days=config.at_risk_days),
        "events": [_annotated(*item) for item in ordered[:max(0, limit)]],
        "counts": {"total": len(ordered), "relevant": relevant},
    }


# --------------------------------------------------------------------------- own words


def own_words(notes: list[dict], preferences: dict | None, now_ms: int) -> dict:
    """`notes` (the newest NOTES_SHOWN, `more_notes` when there are others),
    `preferences` and `contact_hours_now`, as the agent page shows them first."""
    shown = [{key: note.get(key) for key in _NOTE_FIELDS}
             for note in notes[:NOTES_SHOWN] if isinstance(note, dict)]
    return {"notes": shown, "more_notes": len(notes) > NOTES_SHOWN,
            **preferences_view(preferences, now_ms)}


def preferences_view(preferences: dict | None, now_ms: int) -> dict:
    """The customer's preferences without the worker's bookkeeping, and whether
    `now_ms` is inside their contact hours (domain.contact_hours)."""
    cleaned = ({k: v for k, v in preferences.items() if k not in _PREFERENCE_INTERNALS}
               if isinstance(preferences, dict) else None)
    moment = datetime.fromtimestamp(now_ms / 1000, UTC)
    return {"preferences": cleaned,
            "contact_hours_now": contact_hours_now(cleaned, moment).as_json()}


# --------------------------------------------------------------------------- masking


def mask(value: str) -> str:
    """A phone or e-mail address with enough left to check it with the customer.

    "+447700900123" -> "+44 •••• ••0123" (the country code and the last
    four digits), "ada.l@example.org" -> "a••@example.org" (the first letter and the
    domain; always two dots, so the length of the name is not given away).
    """
    text = value.strip()
    if "@" in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}{MASK_DOT * 2}@{domain}"
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) < 8:  # too short to keep a country code and four digits apart
        return MASK_DOT * max(0, len(digits) - 2) + digits[-2:]
    hidden = MASK_DOT * (len(digits) - 6) + digits[-4:]
    groups = [hidden[i:i + 4] for i in range(0, len(hidden) - 4, 4)]
    groups[-1] += hidden[4 * len(groups):]
    return f"{'+' if text.startswith('+') else ''}{digits[:2]} {' '.join(groups)}"


def masked_customer(profile: dict | None) -> dict | None:
    """The customer record with its phones and e-mails masked (social handles are public)."""
    if not isinstance(profile, dict) or not isinstance(profile.get("identifiers"), dict):
        return profile
    identifiers = dict(profile["identifiers"])
    for key in ("phones", "emails"):
        if isinstance(identifiers.get(key), list):
            identifiers[key] = [mask(v) for v in identifiers[key] if isinstance(v, str)]
    return {**profile, "identifiers": identifiers}


def _without_identity(entry: dict) -> dict:
    """An entry without the phone, e-mail or handle it came from: the card shows the
    customer's identifiers masked, and a masked value would no longer match the
    timeline entry's schema."""
    if "identity" not in entry:
        return entry
    return {k: v for k, v in entry.items() if k != "identity"}


# --------------------------------------------------------------------------- record fields


def display_fields(profile: dict | None, fields: Mapping[str, CustomerField],
                   now_ms: int) -> list[dict]:
    """The customer record's fields as the agent card shows them, `[{"field", "label",
    "value", "text"}]`: configured fields first in the file's order, then the rest
    in the record's order under a humanised name.  `text` is None for no value."""
    if not isinstance(profile, dict):
        return []
    names = [n for n in fields if n in profile]
    names += [n for n in profile if n not in fields and n not in NOT_FIELDS]
    out = []
    for name in names:
        spec = fields.get(name) or CustomerField(label=humanise(name))
        value = profile[name]
        out.append({"field": name, "label": spec.label, "value": value,
                    "text": format_value(value, spec, now_ms)})
    return out


def humanise(name: str) -> str:
    """"lifetime_value_gbp" -> "Lifetime value gbp"."""
    words = " ".join(name.replace("_", " ").split())
    return words[:1].upper() + words[1:] if words else name


def format_value(value: Any, spec: CustomerField, now_ms: int) -> str | None:
    """`value` written as `spec` says; a value that does not fit the format is shown as sent."""
    if value is None or value == "":
        return None
    number = _number(value)
    form = spec.format
    if form in ("number", "percent", "money") and number is not None:
        decimals = spec.decimals if spec.decimals is not None else 2 if form == "money" else None
        written = f"{abs(number):,.{decimals}f}" if decimals is not None else f"{abs(number):,}"
        sign = "-" if number < 0 else ""
        if form == "money":
            return f"{sign}{spec.unit}{written}"
        if form == "percent":
            return f"{sign}{written}%"
        return f"{sign}{written} {spec.unit}".rstrip()
    if form == "yes_no" and isinstance(value, bool):
        return "yes" if value else "no"
    if form == "date" and isinstance(value, str):
        return _date_with_years(value, now_ms)
    return _as_text(value)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if value == value else None  # NaN
    if isinstance(value, str):
        try:  # CRM exports often carry numbers as text, sometimes with a % sign
            number = float(value.strip().rstrip("%").replace(",", ""))
        except ValueError:
            return None
        return int(number) if number.is_integer() and "." not in value else number
    return None


def _date_with_years(text: str, now_ms: int) -> str:
    try:
        since = date.fromisoformat(text.strip()[:10])
    except ValueError:
        return text
    today = date.fromtimestamp(now_ms / 1000)
    years = today.year - since.year - ((today.month, today.day) < (since.month, since.day))
    if years < 0:
        return text
    if years == 0:
        return f"{text} (under a year)"
    return f"{text} ({years} year{'s' if years != 1 else ''})"


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)
