"""The rated contact of a survey: which ids of an interaction a `contact_id` may name.

A survey tool names the contact it rates by whatever id it knows: our
`event_id`, or more often the channel's own id (PRODUCT.md, "Rated contact").
Each timeline entry's channel ids go into a per-customer index
(`Keys.contact_ids`) written in the same script call as the entry itself.
"""

from __future__ import annotations

# Per channel, the payload fields that name the interaction in its own system.  A survey
# is not a contact and is never rated, so it has none.
CONTACT_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "call": ("call_id",),
    "chat": ("chat_id",),
    "email": ("message_id", "thread_id"),
    "social": ("post_id",),
}
# Every such field, for the script that forgets the ids of entries it trims.
ALL_CONTACT_ID_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(
    name for names in CONTACT_ID_FIELDS.values() for name in names))


def contact_ids(entry: dict) -> list[str]:
    """The channel ids a survey's `contact_id` may use for this timeline entry (on the
    hot path: one call per accepted event)."""
    names = CONTACT_ID_FIELDS.get(entry.get("channel"))  # type: ignore[arg-type]
    payload = entry.get("payload")
    if not names or not isinstance(payload, dict):
        return []
    ids = [v for name in names if isinstance(v := payload.get(name), str) and v]
    # An e-mail whose thread_id is its message_id is indexed once.
    return list(dict.fromkeys(ids)) if len(ids) > 1 else ids
