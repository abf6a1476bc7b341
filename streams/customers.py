"""Customer records and identity actions: claims, merges and unmerges, erasure, the
provisional profiles a claim links and an agent's confirmation of who is calling.

The other half of identity, resolving an interaction and moving entries, is
`streams.identity`; the rules are `domain.identity`.  The interactions step
(`streams.processor`) calls in here for what it files under provisional and
ambiguous profiles.  Every step returns the messages to publish, as the processor's do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from domain.alerts import refiled_alert
from domain.contacts import contact_key
from domain.identity import (
    AMBIGUOUS,
    CLAIMED,
    CONFIRMED,
    MERGED,
    RELEASED,
    UNMERGED,
    NeverMatch,
    Owner,
    identity_event,
    is_ambiguous,
    merge_cycle,
    profile_identifier,
    root_of,
)
from domain.records import Alert
from kernel.times import utc_now_iso
from schemas.validate import (
    Interaction,
    Rejection,
    check_customer,
    check_identity_action,
    customer_identity_keys,
    identity_keys,
)
from store.alerts import AlertStore
from store.identities import IdentityStore, ProfileChange
from store.keys import is_provisional, provisional_id
from store.negatives import NegativeStore
from store.self_service import SelfServiceStore
from store.timeline import NewEntry, RatedWait, TimelineStore
from streams.detection import Fresh
from streams.identity import carries, filed_under_any, move_entries
from streams.records import Messages, Outgoing, Record

log = logging.getLogger(__name__)

RatedLate = Callable[[Sequence[RatedWait]], Awaitable[list[Outgoing]]]


class CustomerSteps:
    def __init__(self, messages: Messages, timelines: TimelineStore, identities: IdentityStore,
                 alerts: AlertStore, negatives: NegativeStore, never: NeverMatch,
                 rated_late: RatedLate) -> None:
        self.messages = messages
        self.topics = messages.topics
        self.store = timelines
        self.identities = identities
        self.alerts = alerts
        self.negatives = negatives
        self.never = never
        # The processor's: alerts that now have the rated contact they waited for.
        self.rated_late = rated_late
        # Erased with the customer: their own notes and preferences (streams.self_service).
        self.own_words = SelfServiceStore(timelines.redis, timelines.keys)

    # -- what the interactions step filed under provisional and ambiguous profiles --

    def ambiguous(self, fresh: Sequence[Fresh], owners: Sequence[Owner],
                   accepted: Sequence[tuple[Record, Interaction]]) -> list[Outgoing]:
        """An `ambiguous` identity event for each interaction filed under an ambiguous
        profile: the agent who takes it is asked who is calling."""
        if not any(is_ambiguous(f.entry.customer_id) for f in fresh):
            return []
        candidates = {item.event_id: owner.candidates
                      for (_, item), owner in zip(accepted, owners, strict=True)
                      if owner.candidates}
        at = utc_now_iso()
        return [self.messages.identity(identity_event(
                    AMBIGUOUS, f.entry.customer_id, at, record_cause(f.record),
                    event_id=f.entry.event_id,
                    identifiers=[profile_identifier(f.entry.customer_id)],
                    candidates=list(candidates.get(f.entry.event_id, ()))))
                for f in fresh if is_ambiguous(f.entry.customer_id)]

    async def provisional_written(self, written: Sequence[NewEntry]) -> list[Outgoing]:
        """Remember every identifier of the provisional entries just written (any of them
        being claimed links the entry), and link those a customer claimed meanwhile:
        a customer record processed concurrently (possibly by another worker) may have
        claimed one between our lookup and our write, and would not have seen them."""
        carried = {(key, e.customer_id)
                   for e in written
                   for key in self.never.keep(identity_keys(e.entry.get("identity") or {}))}
        pairs = sorted(carried)
        found = await self.identities.alias_and_look_up(
            [(key, pid) for key, pid in pairs if provisional_id(key) != pid],
            [key for key, _ in pairs])
        out: list[Outgoing] = []
        for (key, pid), claimants in zip(pairs, found, strict=True):
            if len(claimants) == 1:
                out.extend(await self.link(pid, claimants[0], key))
        return out

    async def link(self, pid: str, cid: str, key: str) -> list[Outgoing]:
        """Move a provisional profile's entries carrying `key` to the customer claiming
        it (its root, when merged); alerts' waits for contacts too."""
        moved = await move_entries(self.store, self.identities, pid, cid,
                                   None if provisional_id(key) == pid else carries(key),
                                   linked_from=pid)
        if provisional_id(key) != pid:
            await self.identities.drop_alias(key, pid)
        root = root_of(cid, await self.identities.merged_into([cid]))
        out = [self.messages.entry(e) for e in moved.entries]
        out.extend(await self.rated_late(moved.waits))
        out.extend(await self.rated_late(await self.alerts.move_waits(pid, root)))
        if moved.count:
            log.debug("linked a provisional profile to a customer: %d entries", moved.count)
        return out

    # -- customer records (cx.customers.v1, compacted) -----------------------

    async def customers(self, records: Sequence[Record]) -> list[Outgoing]:
        """Records in order: claims, merges and unmerges, erasures, then the provisional
        profiles the claims link."""
        out: list[Outgoing] = []
        updates: list[tuple[Record, str, dict | None]] = []
        for record in records:
            parsed = self._customer_update(record)
            if isinstance(parsed, Rejection):
                out.append(self.messages.reject(record, parsed))
            else:
                updates.append((record, *parsed))
        if not updates:
            return out

        ids = list(dict.fromkeys(cid for _, cid, _ in updates))
        current = dict(zip(ids, await self.store.profiles(ids), strict=True))
        targets = [t for _, _, new in updates if (t := _into(new))]
        merges = await self.identities.merged_into([*ids, *targets])
        changes: list[ProfileChange] = []
        for record, cid, new in updates:
            old = current[cid]
            old_into, new_into = _into(old), _into(new)
            if new_into and new_into != old_into and merge_cycle(cid, new_into, merges):
                out.append(self.messages.reject(record, Rejection(
                    "merge_cycle", f"merging {cid!r} into {new_into!r} would make a loop: "
                    f"{new_into!r} is (merged into) {cid!r}")))
                continue
            cause = record_cause(record)
            if old_into and old_into != new_into:
                out += await self._unmerge(cid, old_into, merges, cause)
                merges.pop(cid, None)
            if new_into:  # again when unchanged: finishes a move a crash interrupted
                merges[cid] = new_into
                out += await self._merge(cid, new_into, merges, cause,
                                         announce=new_into != old_into)
            old_keys = self.never.keep(customer_identity_keys(old)) if old else []
            new_keys = self.never.keep(customer_identity_keys(new)) if new else []
            claimed = tuple(k for k in new_keys if k not in old_keys)
            released = tuple(k for k in old_keys if k not in new_keys)
            changes.append(ProfileChange(cid, new, claimed=tuple(new_keys), released=released))
            out += self._claim_events(cid, claimed, released, cause)
            current[cid] = new
            if new is None:  # now, so a record recreating the customer later stays
                out += await self._erase(cid, merges)
        await self.identities.apply_profiles(changes)
        # An alert raised while its survey sat in a provisional profile keeps that
        # profile's id after linking: erase those of the identifiers the customer held.
        held = dict.fromkeys(provisional_id(key) for c in changes if c.record is None
                             for key in c.released)
        for pid in held:
            if await self.alerts.erase_customer(pid):
                out.append(Outgoing(self.topics.alerts, pid.encode(), None))
        out.extend(await self._link_claimed(changes, current))
        return out

    def _claim_events(self, cid: str, claimed: Sequence[str], released: Sequence[str],
                      cause: dict) -> list[Outgoing]:
        at = utc_now_iso()
        return [self.messages.identity(
                    identity_event(event, cid, at, cause, identifiers=list(keys)))
                for event, keys in ((CLAIMED, claimed), (RELEASED, released)) if keys]

    async def _merge(self, cid: str, into: str, merges: dict[str, str], cause: dict, *,
                     announce: bool) -> list[Outgoing]:
        """Fold `cid` (and whatever was merged into it) into the root of `into`.  The
        merge is recorded first, so an entry arriving meanwhile for `cid` is refused by
        the insert and filed under the root; then everything moves."""
        root = root_of(into, merges)
        await self.identities.set_merge(cid, into)
        moved = await move_entries(self.store, self.identities, cid, root)
        alerts = await self._move_alerts(cid, root)
        waits = await self.alerts.move_waits(cid, root)
        await self.negatives.merge_into(cid, root)
        out = [self.messages.entry(e) for e in moved.entries]
        out += [self.messages.alert(a) for a in alerts]
        out += await self.rated_late([*moved.waits, *waits])
        if announce or moved.count or alerts:
            out.append(self.messages.identity(identity_event(
                MERGED, cid, utc_now_iso(), cause, into=into, root=root,
                moved={"entries": moved.count, "alerts": len(alerts)})))
        return out

    async def _unmerge(self, cid: str, into: str, merges: dict[str, str], cause: dict
                       ) -> list[Outgoing]:
        """Give `cid` and the customers merged into it back their entries and alerts from
        the root they were merged into: whatever was filed under them, before the merge
        or since (provenance, `filed_under`)."""
        root = root_of(into, merges)
        await self.identities.clear_merge(cid, into)
        parts = await self.identities.parts(cid)
        select = filed_under_any(parts)
        moved = await move_entries(self.store, self.identities, root, cid, select)
        # A worker that resolved to the root just before the merge was cleared may have
        # filed an entry of ours there since: a second pass takes it.
        again = await move_entries(self.store, self.identities, root, cid, select)
        alerts = await self._move_alerts(root, cid, select)
        out = [self.messages.entry(e) for e in (*moved.entries, *again.entries)]
        out += [self.messages.alert(a) for a in alerts]
        out += await self.rated_late([*moved.waits, *again.waits])
        out.append(self.messages.identity(identity_event(
            UNMERGED, cid, utc_now_iso(), cause, into=into, root=root,
            moved={"entries": moved.count + again.count, "alerts": len(alerts)})))
        return out

    async def _move_alerts(self, source: str, to: str,
                           select: Callable[[Mapping[str, Any]], bool] | None = None
                           ) -> list[Alert]:
        """Move `source`'s alerts (those `select` picks) to `to`; the new versions."""
        picked = [a for a in await self.alerts.of_customer(source)
                  if select is None or select(a)]
        done: list[Alert] = []
        for _ in range(5):  # compare-and-set: re-read those somebody changed meanwhile
            changes = [(changed, a["version"]) for a in picked
                       if (changed := refiled_alert(a, to, utc_now_iso())) is not None]
            ok = await self.alerts.replace_many(changes)
            done += [changed for (changed, _), won in zip(changes, ok, strict=True) if won]
            lost = [changed["alert_id"] for (changed, _), won in zip(changes, ok, strict=True)
                    if not won]
            if not lost:
                break
            picked = [a for a in await self.alerts.get_many(lost) if a is not None]
        await self.alerts.refile([a["alert_id"] for a in done], source, to)
        return done

    async def _erase(self, cid: str, merges: dict[str, str]) -> list[Outgoing]:
        """Erase the customer and every customer merged into it; when the customer is
        itself merged into another, what was filed under it there goes too."""
        parts = await self.identities.parts(cid)
        into = merges.pop(cid, None)
        if into is not None:
            root = root_of(into, merges)
            select = filed_under_any(parts)
            await self.store.drop_entries(root, [s.entry["event_id"] for s in
                                                 await self.store.take_all(root)
                                                 if select(s.entry)])
            await self.alerts.erase([a["alert_id"] for a in await self.alerts.of_customer(root)
                                     if select(a)], root)
            await self.identities.clear_merge(cid, into)
        below = parts[1:]
        records = await self.store.profiles(below)
        await self.identities.apply_profiles([
            ProfileChange(p, None, released=tuple(customer_identity_keys(r) if r else ()))
            for p, r in zip(below, records, strict=True)])
        out: list[Outgoing] = []
        for part in parts:
            await self.store.erase(part)
            await self.alerts.erase_customer(part)
            await self.negatives.erase_customer(part)
            await self.own_words.erase(part)
            await self.identities.erase(part)
            merges.pop(part, None)
            # Tombstones (key = customer id, value null) on the output topics, so
            # compacted copies and downstream stores drop the customer.  Before what
            # linking publishes: a customer recreated later in the batch keeps the
            # entries linked to it.
            out += [Outgoing(topic, part.encode(), None) for topic in
                    (self.topics.timeline, self.topics.alerts, self.topics.identity)]
        return out

    def _customer_update(self, record: Record) -> tuple[str, dict | None] | Rejection:
        if record.value is None:  # tombstone: erase the customer named by the key
            cid = (record.key or b"").decode("utf-8", "replace")
            # A key no customer record could carry (schemas/customer.v1.json: not empty,
            # no leading '~' or '}') names nobody; '}' would also break the cluster slot.
            if not cid or is_provisional(cid) or cid.startswith("}"):
                return Rejection("no_customer", "tombstone without a customer_id key")
            return cid, None
        checked = check_customer(record.value)
        if isinstance(checked, Rejection):
            return checked
        if checked.get("merged_into") == checked["customer_id"]:
            return Rejection("merge_cycle", f"{checked['customer_id']!r} cannot be merged "
                             "into itself")
        return checked["customer_id"], checked

    async def _link_claimed(
        self, changes: Sequence[ProfileChange], final: dict[str, dict | None]
    ) -> list[Outgoing]:
        """Link the provisional profiles holding an identifier a customer now claims
        alone (one that two customers claim stays where it is: it is shared)."""
        claims = {key: c.customer_id for c in changes if final.get(c.customer_id) is not None
                  for key in c.claimed}
        if not claims:
            return []
        keys = list(claims)
        found = await self.identities.claimants(keys)
        aliases = await self.identities.aliases(keys)
        named = [provisional_id(k) for k in keys]
        exists = await self.store.exists_many(named)
        out: list[Outgoing] = []
        for key, claimants, more, pid, there in zip(keys, found, aliases, named, exists,
                                                    strict=True):
            if len(claimants) != 1:
                continue
            for source in ([pid] if there else []) + more:
                out.extend(await self.link(source, claimants[0], key))
        return out

    # -- identity actions (cx.identity-actions.v1): who is calling ---------------

    async def identity_actions(self, records: Sequence[Record]) -> list[Outgoing]:
        """Confirmations of who is calling on a shared identifier: file the interaction
        (and its alerts) under the confirmed customer."""
        out: list[Outgoing] = []
        for record in records:
            action = check_identity_action(record.value)
            if isinstance(action, Rejection):
                out.append(self.messages.reject(record, action))
                continue
            out += await self._confirm(record, action)
        return out

    async def _confirm(self, record: Record, action: dict) -> list[Outgoing]:
        profile, event_id, cid = action["profile_id"], action["event_id"], action["customer_id"]
        if not is_provisional(profile):
            return [self.messages.reject(record, Rejection(
                "not_ambiguous", f"{profile!r} is not an ambiguous or provisional profile"))]
        (profile_record,) = await self.store.profiles([cid])
        if profile_record is None:
            return [self.messages.reject(
                record, Rejection("unknown_customer", f"no customer {cid!r}"))]
        (claimants,) = await self.identities.claimants([profile_identifier(profile)])
        merges = await self.identities.merged_into([*claimants, cid])
        if root_of(cid, merges) not in {root_of(c, merges) for c in claimants}:
            return [self.messages.reject(record, Rejection(
                "not_a_candidate", f"{cid!r} does not claim the identifier of {profile!r}"))]
        (confirmed,) = await self.alerts.entries(profile, [event_id])
        # The whole contact: a call's started and ended events are one caller.
        contact = contact_key(cast(dict, confirmed)) if confirmed is not None else None
        moved = await move_entries(
            self.store, self.identities, profile, cid,
            lambda entry: entry["event_id"] == event_id
            or (contact is not None and contact_key(cast(dict, entry)) == contact),
            linked_from=profile)
        root = root_of(cid, await self.identities.merged_into([cid]))
        alerts = await self._move_alerts(
            profile, root, lambda a: a.get("survey_event_id") == event_id)
        out = [self.messages.entry(e) for e in moved.entries]
        out += [self.messages.alert(a) for a in alerts]
        out += await self.rated_late(moved.waits)
        if not moved.count and not alerts:
            (stored,) = await self.alerts.entries(root, [event_id])
            if stored is None:
                return [self.messages.reject(record, Rejection(
                    "unknown_event", f"no interaction {event_id!r} in {profile!r}"))]
        cause = {"actor": action["actor"], "action_id": action.get("action_id")}
        out.append(self.messages.identity(identity_event(
            CONFIRMED, cid, utc_now_iso(), cause, event_id=event_id, profile_id=profile,
            root=root)))
        return out


def _into(record: dict | None) -> str | None:
    into = record.get("merged_into") if record else None
    return into if isinstance(into, str) and into else None


def record_cause(record: Record) -> dict:
    return {"record": {"topic": record.topic, "partition": record.partition,
                       "offset": record.offset}}
