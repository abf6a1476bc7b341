"""How timeline entries are read as contacts: which entries are one contact, its intent, when.

Shared by the agent view (`dashboard.prompts`: repeat-contact prompts) and the
CRM summary feed (`consumers.summary`), so an agent's "3 contacts about billing"
and the CRM's repeat-contact figure count the same things the same way.  Pure
functions; entries are timeline entries (schemas/timeline-entry.v1.json), read
defensively: a missing or malformed field gives None, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from kernel.times import epoch_ms, parse_rfc3339

# A survey rates a contact; it is never one itself.
SURVEY = "survey"
SOCIAL = "social"


@dataclass(frozen=True)
class ChannelIds:
    """The payload fields that name a channel's interaction in its own system."""

    fields: tuple[str, ...]  # all of them: the ids a survey's contact_id may name
    contact: str | None  # the one whose entries are one contact; None: each entry is one

    def __post_init__(self) -> None:
        assert self.contact is None or self.contact in self.fields


# The one table of channel id fields.  A survey has none: it is not a contact and is
# never rated.  Read as CONTACT_ID_FIELDS below (grouping entries into contacts) and
# as domain.rated.CONTACT_ID_FIELDS (the ids a survey may name).
CHANNEL_IDS: dict[str, ChannelIds] = {
    "call": ChannelIds(("call_id",), contact="call_id"),
    "chat": ChannelIds(("chat_id",), contact="chat_id"),
    "email": ChannelIds(("message_id", "thread_id"), contact="thread_id"),
    SOCIAL: ChannelIds(("post_id",), contact=None),  # each post is its own contact
}
# One contact may be several entries (call.started + call.ended, a mail thread):
# entries sharing the channel's id field are one contact.
CONTACT_ID_FIELDS: dict[str, str] = {
    channel: ids.contact for channel, ids in CHANNEL_IDS.items() if ids.contact is not None}


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
