"""Filling the contact-reason counters the way the worker does (store.negatives), for
tests of what reads them."""

from __future__ import annotations

from collections.abc import Sequence

from domain.contact_reasons import dimensions
from domain.contacts import normalise_intent
from store.negatives import ContactFact, ContactRules, NegativeStore

# config/signals.toml's defaults: 3 contacts within 7 days, 60 minutes after an abandoned call.
RULES = ContactRules(repeat_window_ms=7 * 86_400_000, abandoned_window_ms=3_600_000,
                     repeat_contacts=3)


def fact(customer_id: str, contact: str, ms: int, *, queue: str | None = "billing-uk",
         intent: str | None = "billing", negative: bool = False,
         abandoned: bool = False) -> ContactFact:
    """One event of `contact` ("call:1": its channel is the part before the colon)."""
    channel = contact.split(":", 1)[0]
    normal = normalise_intent(intent)
    return ContactFact(customer_id, contact, normal, ms, abandoned,
                       dimensions(channel, queue, normal), negative)


async def count_contacts(store: NegativeStore, facts: Sequence[ContactFact]) -> None:
    await store.see_contacts(facts, RULES)
