"""Which customer an interaction belongs to, and moving entries when that changes.

Resolution (`resolve_owners`) reads the claimants of the batch's identifiers in
one round trip and applies domain.identity's rule; merges are only read when an
identifier has several claimants (rare), because the timeline insert itself
refuses a merged customer and names its target (`file_entries` then files the
entry under the target).  So the hot path costs what it did before merges.

Entries move when identity changes: a provisional profile linked to the
customer who claims one of its identifiers (`link`), a merge (all of a
customer's entries to the root), an unmerge (the entries filed under the
customer's parts back out of the root), a confirmation of an ambiguous caller.
Every move adds the entries where they go before dropping them where they were,
so a crash at any point leaves each entry in one place or both, never none, and
the redelivery finishes the move.  An entry records the customer it was first
filed under (`filed_under`) whenever that is not the timeline holding it, which
is what lets an unmerge give every entry back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.identity import MAX_CHAIN, NeverMatch, Owner, choose_owner, root_of
from domain.records import TimelineEntry
from kernel import jsonbytes
from schemas.validate import Interaction, identity_keys
from store.identities import IdentityStore
from store.timeline import Added, AddResult, NewEntry, RatedWait, StoredEntry, TimelineStore


async def resolve_owners(identities: IdentityStore, interactions: Sequence[Interaction],
                         never: NeverMatch) -> list[Owner]:
    """Each interaction's owner, in one round trip (two when an identifier is shared)."""
    wanted, spans = identity_lookups(interactions)
    found = await identities.claimants(wanted)
    shared = [c for claimants in found if len(claimants) > 1 for c in claimants]
    merges = await identities.merged_into(shared) if shared else {}
    simple = not merges and not never.patterns
    owners: list[Owner] = []
    for item, (start, end) in zip(interactions, spans, strict=True):
        # Most events name their customer or carry an identifier one customer claims:
        # those skip the rule (a merge is the insert's to find).
        if item.customer_id:
            owners.append(Owner(item.customer_id, item.customer_id))
        elif simple and start < end and len(first := found[start]) == 1:
            owners.append(Owner(first[0], first[0]))
        else:
            owners.append(choose_owner(None, wanted[start:end], found[start:end], merges,
                                       never))
    return owners


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


def refiled(entry: TimelineEntry, to: str, occurred_ms: int, *,
            linked_from: str | None = None) -> NewEntry:
    """The entry as filed in `to`'s timeline, remembering where it was first filed."""
    moved = entry.copy()
    first = moved.get("filed_under") or moved["customer_id"]
    moved["customer_id"] = to
    if first == to or first.startswith("~"):
        moved.pop("filed_under", None)
    else:
        moved["filed_under"] = first
    if linked_from is not None:
        moved.pop("provisional", None)
        moved["linked_from"] = linked_from
    return NewEntry(to, moved["event_id"], occurred_ms, jsonbytes.dumps(moved),
                    moved.get("source") or {}, moved)


async def file_entries(timelines: TimelineStore, identities: IdentityStore,
                       entries: Sequence[NewEntry]) -> tuple[list[NewEntry], Added]:
    """Store entries, each under its customer's root: an entry whose customer turns out
    to be merged is filed again under the customer it is merged into.  Returns the
    entries as filed and the outcome, aligned."""
    filed = list(entries)
    added = await timelines.add_entries(filed)
    results, waits = list(added.results), list(added.waits)
    for _ in range(MAX_CHAIN):
        if not added.merged:
            break
        merges = await identities.merged_into(list(set(added.merged.values())))
        again = sorted(added.merged)
        for i in again:
            e = filed[i]
            filed[i] = refiled(e.entry, root_of(added.merged[i], merges), e.occurred_ms)
        added = await timelines.add_entries([filed[i] for i in again])
        for i, result in zip(again, added.results, strict=True):
            results[i] = result
        waits += added.waits
        added = Added(added.results, added.waits,
                      {again[j]: into for j, into in added.merged.items()})
    return filed, Added(results, waits)


@dataclass(frozen=True, slots=True)
class Moved:
    entries: list[NewEntry]  # filed where they went, to publish (not the duplicates)
    waits: list[RatedWait]  # alerts that wait for one of them as their rated contact
    count: int  # how many were moved, duplicates included


async def move_entries(timelines: TimelineStore, identities: IdentityStore, source: str,
                       to: str, select: Callable[[TimelineEntry], bool] | None = None, *,
                       linked_from: str | None = None) -> Moved:
    """Move `source`'s entries that `select` picks into `to`'s timeline (its root, if
    `to` is merged): one round trip to read, one to add, one to drop, whatever the count."""
    stored: list[StoredEntry] = [s for s in await timelines.take_all(source)
                                 if select is None or select(s.entry)]
    moving = [refiled(s.entry, to, s.occurred_ms, linked_from=linked_from) for s in stored]
    filed, added = await file_entries(timelines, identities, moving)
    await timelines.drop_entries(source, [e.event_id for e in filed])
    return Moved([e for e, r in zip(filed, added.results, strict=True)
                  if r is not AddResult.DUPLICATE], added.waits, len(filed))


def carries(key: str) -> Callable[[TimelineEntry], bool]:
    """Whether an entry's interaction carried this identifier."""
    return lambda entry: key in identity_keys(entry.get("identity") or {})


def filed_under_any(parts: Sequence[str]) -> Callable[[Mapping[str, Any]], bool]:
    """Whether an entry or alert was first filed under one of these customers."""
    wanted = set(parts)
    return lambda entry: (entry.get("filed_under") or entry["customer_id"]) in wanted
