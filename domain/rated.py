"""The rated contact of a survey: which ids of an interaction a `contact_id` may name.

A survey tool names the contact it rates by whatever id it knows: our
`event_id`, or more often the channel's own id (PRODUCT.md, "Rated contact").
Nothing is indexed for it when an entry is stored (only ~0.6% of events are
bottom-2-box surveys that need a rated contact): the rare survey that names a
channel id pays for a scan of its customer's timeline instead
(`store.alerts`), and an entry's insert decodes the entry only when its
customer has alerts waiting for a contact (`store.timeline`).
"""

from __future__ import annotations

import orjson

from domain.contacts import CHANNEL_IDS

# Per channel, the payload fields that name the interaction in its own system (the one
# table is domain.contacts.CHANNEL_IDS).  A survey is not a contact and is never rated,
# so it has none.
CONTACT_ID_FIELDS: dict[str, tuple[str, ...]] = {
    channel: ids.fields for channel, ids in CHANNEL_IDS.items()}
# The same as (field, channel) pairs, the form the Lua scripts take.
CONTACT_ID_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (name, channel) for channel, names in CONTACT_ID_FIELDS.items() for name in names)


def contact_ids(entry: dict) -> list[str]:
    """The channel ids a survey's `contact_id` may use for this timeline entry."""
    names = CONTACT_ID_FIELDS.get(entry.get("channel"))  # type: ignore[arg-type]
    payload = entry.get("payload")
    if not names or not isinstance(payload, dict):
        return []
    ids = [v for name in names if isinstance(v := payload.get(name), str) and v]
    # An e-mail whose thread_id is its message_id names it once.
    return list(dict.fromkeys(ids)) if len(ids) > 1 else ids


def needles(contact_id: str) -> list[tuple[bytes, str, str]]:
    """(needle, field, channel) per pair: `needle` is how a stored entry's JSON spells
    that field holding `contact_id` (orjson writes compact JSON, so the same escaping
    and no spaces), a cheap plain-substring test before a candidate is decoded."""
    value = orjson.dumps(contact_id)
    return [(b'"' + name.encode() + b'":' + value, name, channel)
            for name, channel in CONTACT_ID_PAIRS]
