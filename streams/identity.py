"""Which customer an interaction belongs to, and late linking.

An interaction naming a `customer_id` belongs to that customer.  One that
only carries an `identity` is looked up in the identity index built from
cx.customers.v1; when no customer claims any of its identifiers yet, it goes
to a provisional profile named after its first identifier
(`store.keys.provisional_id`).  When a customer record later claims that
identifier, `link` moves the provisional entries into the customer's
timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from schemas.validate import Interaction, identity_keys
from store.keys import PROVISIONAL_MARK, provisional_id
from store.timeline import AddResult, NewEntry, RatedWait, TimelineStore


async def resolve_owners(store: TimelineStore, interactions: Sequence[Interaction]) -> list[str]:
    """The customer id (or provisional id) of each interaction, in one round trip."""
    wanted, spans = identity_lookups(interactions)
    return owners_from(interactions, wanted, spans, await store.lookup(wanted))


def identity_lookups(interactions: Sequence[Interaction]
                     ) -> tuple[list[str], list[tuple[int, int]]]:
    """The identity keys to look up for the batch, and each interaction's span of them
    (none when it names its customer)."""
    wanted: list[str] = []
    spans: list[tuple[int, int]] = []
    for item in interactions:
        keys = [] if item.customer_id else identity_keys(item.identity or {})
        spans.append((len(wanted), len(wanted) + len(keys)))
        wanted.extend(keys)
    return wanted, spans


def owners_from(interactions: Sequence[Interaction], wanted: Sequence[str],
                spans: Sequence[tuple[int, int]], found: Sequence[str | None]) -> list[str]:
    """Each interaction's owner, given what the lookups of `identity_lookups` found:
    its customer_id, else the first claimed identifier's customer, else a provisional id."""
    owners: list[str] = []
    for item, (start, end) in zip(interactions, spans, strict=True):
        if item.customer_id:
            owners.append(item.customer_id)
            continue
        claimed = next((cid for cid in found[start:end] if cid), None)
        owners.append(claimed or provisional_id(wanted[start]))
    return owners


async def claimed_provisionals(
    store: TimelineStore, provisional_ids: Sequence[str]
) -> list[tuple[str, str]]:
    """(provisional id, customer id) for provisional profiles a customer now claims.

    Called after writing provisional entries: a customer record processed
    concurrently (possibly by another worker) may have claimed the identifier
    between our lookup and our write, and would not have seen our entries.
    """
    owners = await store.lookup([pid.removeprefix(PROVISIONAL_MARK) for pid in provisional_ids])
    return [(pid, cid) for pid, cid in zip(provisional_ids, owners, strict=True) if cid]


@dataclass(frozen=True, slots=True)
class Linked:
    entries: list[NewEntry]  # moved, to publish
    waits: list[RatedWait]  # alerts of the customer that wait for a moved entry


async def link(store: TimelineStore, pid: str, customer_id: str) -> Linked:
    """Move a provisional profile's entries to the customer.

    Safe to repeat after a crash at any point: entries are added idempotently
    before the provisional profile is dropped.  Adding them reports the customer's
    alerts that wait for one of them as their rated contact.
    """
    moved: list[NewEntry] = []
    for stored in await store.take_all(pid):
        entry = stored.entry.copy()
        entry["customer_id"] = customer_id
        entry.pop("provisional", None)
        entry["linked_from"] = pid
        moved.append(
            NewEntry(customer_id, entry["event_id"], stored.occurred_ms, orjson.dumps(entry),
                     entry.get("source") or {}, entry)
        )
    added = await store.add_entries(moved)
    await store.drop_entries(pid, [e.event_id for e in moved])
    return Linked([e for e, r in zip(moved, added.results, strict=True)
                   if r is not AddResult.DUPLICATE], added.waits)
