"""Who an interaction belongs to: the rules, free of Redis.

Three facts decide it, all read from the store by the caller:

- the claimants of each identifier (every current customer whose record lists
  it; two or more make the identifier *shared*),
- the merges (`merged_into` of a customer record: C-1 -> C-2 -> ...), which
  give each customer its *root*, the customer whose timeline now holds it,
- the identifiers that are never used for matching (switchboard numbers,
  `noreply@` mailboxes: `CXT_IDENTITY_NEVER_MATCH`).

An interaction naming its customer is filed under that customer's root.  One
that only carries identifiers is filed by the first identifier with a single
candidate root; failing that, by the candidates the shared identifiers have in
common when that is one customer; failing that, under an *ambiguous* profile
of its first shared identifier (the agent confirms who is calling); and with
no claimed identifier at all, under a *provisional* profile of its first usable
identifier, to be linked when any of its identifiers is claimed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import orjson

# Customer ids cannot contain control characters (schemas/customer.v1.json), so a
# newline separates the claimants of one identifier in the index.
CLAIMANT_SEPARATOR = "\n"

# Provisional profiles are keyed "~" + identifier key; ambiguous ones "~?" + key.
# The customer schema forbids a leading "~" in CRM ids, so none can meet a CRM id.
PROVISIONAL_MARK = "~"
AMBIGUOUS_MARK = "~?"

# Longer chains than this are a loop in the data (refused when written, so only a
# concurrent pair of merges could make one): resolution stops there.
MAX_CHAIN = 32


def provisional_id(identity_key: str) -> str:
    return PROVISIONAL_MARK + identity_key


def ambiguous_id(identity_key: str) -> str:
    return AMBIGUOUS_MARK + identity_key


def is_provisional(customer_id: str) -> bool:
    """A provisional or ambiguous profile: not a CRM customer."""
    return customer_id.startswith(PROVISIONAL_MARK)


def is_ambiguous(customer_id: str) -> bool:
    return customer_id.startswith(AMBIGUOUS_MARK)


def profile_identifier(profile_id: str) -> str:
    """The identifier key a provisional or ambiguous profile is named after."""
    mark = AMBIGUOUS_MARK if is_ambiguous(profile_id) else PROVISIONAL_MARK
    return profile_id.removeprefix(mark)


def parse_claimants(value: str | None) -> tuple[str, ...]:
    return tuple(value.split(CLAIMANT_SEPARATOR)) if value else ()


@dataclass(frozen=True, slots=True)
class NeverMatch:
    """Identifier patterns never used for matching (`fnmatch` globs on identifier keys,
    e.g. `phone:+442070000000`, `email:noreply@*`)."""

    patterns: tuple[str, ...] = ()

    def usable(self, key: str) -> bool:
        return not any(fnmatchcase(key, p) for p in self.patterns)

    def keep(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if self.usable(k)]


def root_of(customer_id: str, merged_into: Mapping[str, str]) -> str:
    """The customer whose timeline holds `customer_id`, following merges."""
    seen = 0
    while customer_id in merged_into and seen < MAX_CHAIN:
        customer_id = merged_into[customer_id]
        seen += 1
    return customer_id


def merge_cycle(customer_id: str, into: str, merged_into: Mapping[str, str]) -> bool:
    """Whether merging `customer_id` into `into` would close a loop."""
    current, seen = into, 0
    while seen <= MAX_CHAIN:
        if current == customer_id:
            return True
        if current not in merged_into:
            return False
        current = merged_into[current]
        seen += 1
    return True


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class Owner:
    """Where an interaction is filed."""

    root: str  # the timeline it goes to: a customer, a provisional or an ambiguous profile
    filed_under: str  # the customer (or profile) it belongs to before merges
    candidates: tuple[str, ...] = ()  # an ambiguous profile's candidate customers (roots)


def choose_owner(customer_id: str | None, keys: Sequence[str],
                 claimants: Sequence[tuple[str, ...]], merged_into: Mapping[str, str],
                 never: NeverMatch) -> Owner:
    """The owner of one interaction: `keys` are its identifier keys in priority order,
    `claimants` each key's claimants (from the index)."""
    if customer_id:
        return Owner(root_of(customer_id, merged_into), customer_id)
    usable = [(k, c) for k, c in zip(keys, claimants, strict=True) if never.usable(k)]
    shared: list[tuple[str, dict[str, str]]] = []  # (key, root -> first claimant)
    for key, found in usable:
        roots: dict[str, str] = {}  # root -> the claimant it is filed under
        for claimant in found:
            root = root_of(claimant, merged_into)
            # The root's own claim first: after an unmerge the entry stays with it.
            if root not in roots or claimant == root:
                roots[root] = claimant
        if len(roots) == 1:
            (root, claimant), = roots.items()
            return Owner(root, claimant)
        if roots:
            shared.append((key, roots))
    if shared:
        common = set(shared[0][1]).intersection(*(set(r) for _, r in shared[1:]))
        if len(common) == 1:
            root = common.pop()
            return Owner(root, shared[0][1][root])
        key, roots = shared[0]
        candidates = tuple(sorted(common or roots))
        return Owner(ambiguous_id(key), ambiguous_id(key), candidates)
    first = usable[0][0] if usable else (keys[0] if keys else "unknown")
    return Owner(provisional_id(first), provisional_id(first))


# cx.identity.v1 (schemas/identity-event.v1.json): every identity decision.
CLAIMED, RELEASED, MERGED, UNMERGED, AMBIGUOUS, CONFIRMED = (
    "claimed", "released", "merged", "unmerged", "ambiguous", "confirmed")


def identity_event(event: str, customer_id: str, at: str, cause: Mapping[str, Any],
                   **fields: Any) -> dict[str, Any]:
    """One identity decision.  `cause` is {"record": {topic, partition, offset}} for what
    a record caused, or {"actor": ..., "action_id": ...} for a person's confirmation;
    `identity_event_id` is the same each time the same cause is processed again, so a
    subscriber can drop the repeats of a redelivery."""
    seed = orjson.dumps([event, customer_id, cause, fields.get("event_id"),
                         fields.get("identifiers")], option=orjson.OPT_SORT_KEYS)
    return {"identity_event_id": "ID-" + hashlib.sha256(seed).hexdigest()[:24],
            "event": event, "customer_id": customer_id, "at": at, "cause": dict(cause),
            **fields}
