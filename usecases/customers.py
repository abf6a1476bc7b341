"""Customer use-cases: what is held about a customer (`cxt customers show`, `GET
/api/customers/{id}`), what a merge would move (`cxt customers merge-preview`, `GET
/api/customers/{id}/merge-preview`), who may be confirmed as the caller of an
ambiguous profile and the confirmation itself (`POST /api/identity/confirm`), and
erasure (`cxt customers erase`).

show: the CRM record; for each of its identifiers every customer that claims it
(two or more: the identifier is shared, and an interaction carrying only it is not
guessed); the merge (`merged_into`, and the root whose timeline now holds the
customer); the customers merged into it; the provisional and ambiguous profiles whose
entries were linked or confirmed into its timeline; and the profiles of its
identifiers still holding entries (provisional ones waiting to be linked, ambiguous
ones waiting for an agent to confirm who was calling).

merge-preview: reads only.  What a record for C-1 with `merged_into: C-2` would
move, worked out as the worker would (streams.processor): the root it lands in, C-1's
entries (its own timeline, which already holds whatever was merged into C-1; or,
when C-1 is merged elsewhere now, what is filed under it there) by channel, its
alerts, and the identifiers of C-1 and its parts.  One round trip per kind of data,
none per entry.

erase: publishes the null record on cx.customers.v1 (key = customer id), the
contract's erasure; the worker then deletes the customer's data and publishes
tombstones downstream.  The command waits until the worker has done so.

The JSON of show and merge-preview (`view_json`, `preview_json`) is the same from
the command line and the API.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

from domain.alerts import RESOLVED
from domain.identity import (
    NeverMatch,
    is_ambiguous,
    merge_cycle,
    profile_identifier,
    root_of,
)
from domain.records import Alert
from kernel.errors import CxtError
from kernel.kafka import make_producer, start_producer
from kernel.settings import Settings
from kernel.times import utc_now_iso
from schemas.validate import customer_identity_keys
from store.alerts import AlertStore
from store.identities import IdentityStore
from store.keys import ambiguous_id, provisional_id
from store.stores import Stores, open_stores
from store.timeline import CustomerOverview, TimelineStore

ERASE_TIMEOUT_S = 15.0
EVERY_IDENTIFIER_MATCHES = NeverMatch()


# schemas/customer.v1.json's customer_id: what the worker accepts as a tombstone key.
_CUSTOMER_ID = re.compile(r"^[^~}\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,127}$")
# schemas/identity-action.v1.json: profile_id and event_id lengths.
PROFILE_ID_MAX, EVENT_ID_MAX = 300, 128


class CustomerCommandError(CxtError):
    """Printed as one line; the command exits 1."""


class BadCustomerInput(CustomerCommandError):
    """Input that cannot be right whatever is stored: `field` names what is wrong (the
    command exits 2, the API answers 400 or 422)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class MergeRefused(CustomerCommandError):
    """The merge asked for is one the worker would refuse (a loop) or has already made;
    `reason` is `merge_cycle` or `already_merged` (the API answers 409)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotACandidate(CustomerCommandError):
    """The customer confirmed is not among the ambiguous profile's candidates."""


class UnknownInteraction(CustomerCommandError):
    """The interaction is not (or no longer) in the ambiguous profile."""


@dataclass(frozen=True)
class Identifier:
    key: str
    claimants: tuple[str, ...]  # every customer whose record lists it
    roots: tuple[str, ...]  # where those claimants' timelines are (merges followed)
    matching: bool = True  # False: never used for matching (CXT_IDENTITY_NEVER_MATCH)

    def resolves_to(self) -> str | None:
        """Where an interaction carrying only this identifier is filed: the one root of
        its claimants; None when nobody claims it, or several do (it is shared)."""
        return self.roots[0] if self.matching and len(self.roots) == 1 else None


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    overview: CustomerOverview
    identifiers: list[Identifier]
    waiting: list[str]  # provisional profiles of its identifiers not linked yet
    alerts: list[Alert]
    merged_into: str | None = None  # the customer this one is merged into
    root: str | None = None  # the customer whose timeline holds this one (itself if unmerged)
    parts: list[str] = field(default_factory=list)  # merged into it, directly or not
    # Ambiguous profiles of its identifiers holding entries an agent has to confirm.
    unconfirmed: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return bool(self.overview.record or self.overview.entries or self.alerts
                    or self.merged_into or self.parts)


def check_customer_id(customer_id: str, field_name: str = "customer_id") -> str:
    if not _CUSTOMER_ID.match(customer_id):
        raise BadCustomerInput(field_name,
            f"{customer_id[:60]!r} is not a customer id (1-128 characters, no control "
            "characters, not starting with '~' or '}')")
    return customer_id


@asynccontextmanager
async def _stores(settings: Settings) -> AsyncIterator[Stores]:
    async with open_stores(settings) as stores:
        yield stores


# -- show -----------------------------------------------------------------------------


async def view_customer(settings: Settings, customer_id: str) -> CustomerView:
    check_customer_id(customer_id)
    async with _stores(settings) as stores:
        return await customer_view(stores.timelines, stores.identities, stores.alerts,
                                   customer_id, NeverMatch(settings.identity_never_match))


async def customer_view(timelines: TimelineStore, identities: IdentityStore,
                        alerts: AlertStore, customer_id: str,
                        never: NeverMatch = EVERY_IDENTIFIER_MATCHES) -> CustomerView:
    """What `cxt customers show` and `GET /api/customers/{id}` show: reads only, a round
    trip per kind of data (and per link of a merge chain)."""
    overview, alerts_of, parts, own_merge = await asyncio.gather(
        timelines.overview(customer_id), alerts.of_customer(customer_id),
        identities.parts(customer_id), identities.merged_into([customer_id]))
    keys = customer_identity_keys(overview.record) if overview.record else []
    found = await identities.claimants(keys)
    merges = {**own_merge, **await identities.merged_into(
        [c for claimants in found for c in claimants])}
    identifiers = [Identifier(key, claimants,
                              tuple(dict.fromkeys(root_of(c, merges) for c in claimants)),
                              never.usable(key))
                   for key, claimants in zip(keys, found, strict=True)]
    pending = [provisional_id(key) for key in keys]
    doubtful = [ambiguous_id(key) for key in keys]
    exists = await timelines.exists_many([*pending, *doubtful]) if keys else []
    return CustomerView(
        customer_id, overview, identifiers,
        [pid for pid, there in zip(pending, exists[:len(keys)], strict=True) if there],
        alerts_of, merged_into=own_merge.get(customer_id),
        root=root_of(customer_id, own_merge), parts=parts[1:],
        unconfirmed=[pid for pid, there in zip(doubtful, exists[len(keys):], strict=True)
                     if there])


def view_json(view: CustomerView) -> dict:
    linked = view.overview.linked
    return {
        "customer_id": view.customer_id, "known": view.known, "record": view.overview.record,
        "timeline_entries": view.overview.entries,
        "merged_into": view.merged_into, "root": view.root,
        "merged_parts": view.parts,
        "identifiers": [
            {"key": i.key, "claimants": list(i.claimants),
             "shared_with": [c for c in i.claimants if c != view.customer_id],
             "shared": len(i.claimants) > 1, "matching": i.matching,
             "resolves_to": i.resolves_to()}
            for i in view.identifiers],
        "linked_provisional_profiles": {p: n for p, n in linked.items() if not is_ambiguous(p)},
        "linked_ambiguous_profiles": {p: n for p, n in linked.items() if is_ambiguous(p)},
        "unlinked_provisional_profiles": view.waiting,
        "unconfirmed_ambiguous_profiles": view.unconfirmed,
        "alerts": [{"alert_id": a["alert_id"], "status": a["status"]} for a in view.alerts],
    }


# -- merge preview ----------------------------------------------------------------------


@dataclass(frozen=True)
class MergePreview:
    customer_id: str  # the customer to merge (C-1)
    into: str  # the customer named by merged_into (C-2)
    root: str  # where C-1's timeline would land (C-2, or what C-2 is merged into)
    parts: list[str]  # C-1 and the customers merged into it
    entries: int
    by_channel: dict[str, int]
    alerts: list[Alert]
    identifiers: dict[str, list[str]]  # part -> its identifier keys
    currently_into: str | None  # C-1 is merged into another customer now
    into_known: bool  # C-2 has a customer record here


async def preview_merge(settings: Settings, customer_id: str, into: str) -> MergePreview:
    check_customer_id(customer_id)
    check_customer_id(into, "into")
    async with _stores(settings) as stores:
        return await merge_preview(stores.timelines, stores.identities, stores.alerts,
                                   customer_id, into)


async def merge_preview(timelines: TimelineStore, identities: IdentityStore,
                        alerts: AlertStore, customer_id: str, into: str) -> MergePreview:
    """What merging `customer_id` into `into` would move; MergeRefused when the worker
    would refuse it or has done it already."""
    if customer_id == into:
        raise MergeRefused("merge_cycle", f"{customer_id} cannot be merged into itself")
    merges = await identities.merged_into([customer_id, into])
    if merges.get(customer_id) == into:
        raise MergeRefused("already_merged", f"{customer_id} is already merged into {into}")
    if merge_cycle(customer_id, into, merges):
        raise MergeRefused("merge_cycle", f"merging {customer_id} into {into} would make a "
                           f"loop: {into} is merged into {customer_id}"
                           f"{'' if merges.get(into) == customer_id else ' (through others)'}")
    parts = await identities.parts(customer_id)
    currently = merges.get(customer_id)
    # Unmerged, C-1's timeline holds all of it; merged elsewhere, what is filed under its
    # parts in that root is what an unmerge would take out and the merge move on.
    source = customer_id if currently is None else root_of(customer_id, merges)
    wanted = set(parts)

    def belongs(item: dict) -> bool:
        return currently is None or (item.get("filed_under") or item["customer_id"]) in wanted

    stored, alerts_of, records = await asyncio.gather(
        timelines.take_all(source), alerts.of_customer(source),
        timelines.profiles([*parts, into]))
    moving = [s.entry for s in stored if belongs(s.entry)]
    by_channel = Counter(str(e.get("channel")) for e in moving)
    return MergePreview(
        customer_id, into, root_of(into, merges), parts, len(moving),
        dict(sorted(by_channel.items())),
        sorted((a for a in alerts_of if belongs(a)), key=lambda a: a["alert_id"]),
        {p: customer_identity_keys(r) if r else []
         for p, r in zip(parts, records[:-1], strict=True)},
        currently, records[-1] is not None)


def preview_json(preview: MergePreview) -> dict:
    return {
        "customer_id": preview.customer_id, "into": preview.into, "root": preview.root,
        "currently_merged_into": preview.currently_into,
        "into_has_record": preview.into_known,
        "parts": preview.parts,
        "entries": {"total": preview.entries, "by_channel": preview.by_channel},
        "alerts": [{"alert_id": a["alert_id"], "status": a["status"]}
                   for a in preview.alerts],
        "open_alerts": sum(1 for a in preview.alerts if a.get("status") != RESOLVED),
        "identifiers": preview.identifiers,
    }


# -- who is calling: an ambiguous profile's candidates and the confirmation --------------


@dataclass(frozen=True)
class Candidate:
    customer_id: str  # a root: the customer the interaction would be filed under
    name: str | None  # the record's name, if any


async def candidates_of(timelines: TimelineStore, identities: IdentityStore,
                        profile_id: str) -> list[Candidate]:
    """Who may be calling on an ambiguous profile: the claimants of its identifier,
    each mapped to its root (two claimants merged into one are one candidate)."""
    if not is_ambiguous(profile_id):
        return []
    (claimants,) = await identities.claimants([profile_identifier(profile_id)])
    merges = await identities.merged_into(claimants) if claimants else {}
    roots = list(dict.fromkeys(root_of(c, merges) for c in claimants))
    records = await timelines.profiles(roots)
    return [Candidate(cid, r.get("name") if isinstance(r, dict)
                      and isinstance(r.get("name"), str) else None)
            for cid, r in zip(roots, records, strict=True)]


def check_confirmation(profile_id: object, event_id: object, customer_id: object
                       ) -> tuple[str, str, str]:
    """The three fields of a confirmation, or BadCustomerInput naming the wrong one."""
    for name, value in (("profile_id", profile_id), ("event_id", event_id),
                        ("customer_id", customer_id)):
        if not isinstance(value, str) or not value:
            raise BadCustomerInput(name, f"{name} is required (a non-empty string)")
    assert isinstance(profile_id, str) and isinstance(event_id, str)
    assert isinstance(customer_id, str)
    if not is_ambiguous(profile_id) or len(profile_id) > PROFILE_ID_MAX:
        raise BadCustomerInput("profile_id", f"profile_id {profile_id[:60]!r} is not an "
                               "ambiguous profile (its id starts with '~?')")
    if len(event_id) > EVENT_ID_MAX:
        raise BadCustomerInput("event_id", f"event_id is longer than {EVENT_ID_MAX} characters")
    check_customer_id(customer_id)
    return profile_id, event_id, customer_id


async def confirm_caller(timelines: TimelineStore, identities: IdentityStore,
                         alerts: AlertStore, producer: AIOKafkaProducer, topic: str, *,
                         profile_id: str, event_id: str, customer_id: str, actor: str
                         ) -> dict:
    """Publish an agent's confirmation of who is calling (schemas/identity-action.v1.json)
    after checking it against what is stored; the worker files the interaction.  Returns
    the action published."""
    candidates = await candidates_of(timelines, identities, profile_id)
    if customer_id not in {c.customer_id for c in candidates}:
        listed = ", ".join(c.customer_id for c in candidates) or "none"
        raise NotACandidate(f"{customer_id} is not a candidate of {profile_id} "
                            f"(candidates: {listed})")
    (stored,) = await alerts.entries(profile_id, [event_id])
    if stored is None:
        raise UnknownInteraction(f"no interaction {event_id!r} waiting in {profile_id!r} "
                                 "(confirmed already, or never filed there)")
    action = {"action_id": uuid.uuid4().hex, "action": "confirm", "profile_id": profile_id,
              "event_id": event_id, "customer_id": customer_id, "actor": actor,
              "at": utc_now_iso()}
    await producer.send_and_wait(topic, orjson.dumps(action), key=profile_id.encode())
    return action


# -- erase -------------------------------------------------------------------------------


async def _known(stores: Stores, customer_id: str) -> bool:
    return (await customer_view(stores.timelines, stores.identities, stores.alerts,
                                customer_id)).known


async def erase_customer(settings: Settings, customer_id: str) -> bool:
    """Publish the null record; True once the worker erased what was stored (False when
    there was nothing stored here to wait for)."""
    check_customer_id(customer_id)
    async with _stores(settings) as stores:
        was_known = await _known(stores, customer_id)
        producer = await start_producer(make_producer(settings))
        try:
            await producer.send_and_wait(settings.topics.customers, None,
                                         key=customer_id.encode())
        finally:
            await producer.stop()
        if was_known:
            await _wait_erased(stores, customer_id)
    return was_known


async def _wait_erased(stores: Stores, customer_id: str) -> None:
    deadline = time.monotonic() + ERASE_TIMEOUT_S
    while time.monotonic() < deadline:
        if not await _known(stores, customer_id):
            return
        await asyncio.sleep(0.2)
    raise CustomerCommandError(
        f"the erasure of {customer_id} was published on the customers topic, but no worker "
        f"applied it within {ERASE_TIMEOUT_S:.0f} s; is `cxt worker` running?")
