"""domain.contacts.CHANNEL_IDS, the one table of channel id fields, as both readers see it."""

from __future__ import annotations

from domain import contacts, rated


def test_grouping_fields_unchanged() -> None:
    assert contacts.CONTACT_ID_FIELDS == {"call": "call_id", "chat": "chat_id",
                                          "email": "thread_id"}


def test_rated_fields_and_pairs_unchanged() -> None:
    assert rated.CONTACT_ID_FIELDS == {"call": ("call_id",), "chat": ("chat_id",),
                                       "email": ("message_id", "thread_id"),
                                       "social": ("post_id",)}
    assert rated.CONTACT_ID_PAIRS == (("call_id", "call"), ("chat_id", "chat"),
                                      ("message_id", "email"), ("thread_id", "email"),
                                      ("post_id", "social"))
