"""How timeline entries are read as contacts: which entries are one contact, its intent, when.

Shared by the agent view (`dashboard.prompts`: repeat-contact prompts) and the
CRM summary feed (`consumers.summary`), so an agent's "3 contacts about billing"
and the CRM's repeat-contact figure count the same things the same way.  Pure
functions; entries are timeline entries (schemas/timeline-entry.v1.json), read
defensively: a missing or malformed field gives None, never an exception.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from kernel.times import epoch_ms, parse_rfc3339

# One contact may be several entries (call.started + call.ended, a mail thread):
# entries sharing the channel's id field are one contact.
CONTACT_ID_FIELDS: dict[str, str] = {"call": "call_id", "chat": "chat_id", "email": "thread_id"}
# A survey rates a contact; it is never one itself.
SURVEY = "survey"
SOCIAL = "social"


def contact_key(entry: dict, *, social: bool = False) -> tuple[str, str] | None:
    """What makes entries one contact (call_id, chat_id, thread_id, else event_id).

    None for an entry that is not a contact or has no id at all.  A survey is
    never a contact.  A social post is one only with `social=True`: the agent
    view leaves posts out (a post is not addressed to an agent, so it makes no
    repeat contact), the CRM summary counts them (the customer did reach out),
    each post on its own (by event_id).
    """
    channel = entry.get("channel")
    if not isinstance(channel, str) or channel == SURVEY or (channel == SOCIAL and not social):
        return None
    payload = entry.get("payload")
    field = CONTACT_ID_FIELDS.get(channel)
    if field and isinstance(payload, dict):
        value = payload.get(field)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            return channel, str(value)
    event_id = entry.get("event_id")
    if isinstance(event_id, str) and event_id:
        return "event", event_id
    return None


def normalise_intent(value: Any) -> str | None:
    """An intent as compared and reported: trimmed, case-folded; None when empty or not text."""
    if isinstance(value, str) and (text := value.strip().casefold()):
        return text
    return None


def parse_ms(value: Any) -> int | None:
    """Epoch milliseconds of an RFC 3339 text; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_rfc3339(value)
    except ValueError:
        return None
    if moment.tzinfo is None:  # not RFC 3339, but a missing offset is most likely UTC
        moment = moment.replace(tzinfo=UTC)
    return epoch_ms(moment)
