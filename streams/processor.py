"""The pipeline for one batch: topic -> validate -> resolve -> store -> publish.

Independent of faust: it takes plain `Record`s and returns the `Outgoing`
messages to publish.  The caller publishes them and only then acknowledges
the records, so a crash anywhere leaves the batch to be redelivered, and the
idempotent store turns the redelivery into no change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

from cxt.settings import Settings
from streams.identity import claimed_provisionals, link, resolve_owners
from streams.keys import is_provisional, provisional_id
from streams.records import Outgoing, Record, dead_letter, utc_now_iso
from streams.store import AddResult, NewEntry, ProfileChange, TimelineStore
from streams.validate import (
    Interaction,
    Rejection,
    check_customer,
    check_interaction,
    customer_identity_keys,
)

log = logging.getLogger(__name__)


class Processor:
    def __init__(self, settings: Settings, store: TimelineStore) -> None:
        self.topics = settings.topics
        self.max_bytes = settings.max_event_bytes
        self.store = store
        self._channel_of = settings.topics.channel_of

    # -- interactions (the five inbound channels) ----------------------------

    async def interactions(self, records: Sequence[Record]) -> list[Outgoing]:
        out: list[Outgoing] = []
        accepted: list[tuple[Record, Interaction]] = []
        for record in records:
            checked = check_interaction(
                record.value, self._channel_of[record.topic], max_bytes=self.max_bytes
            )
            if isinstance(checked, Rejection):
                out.append(self._reject(record, checked))
            else:
                accepted.append((record, checked))
        if not accepted:
            return out

        owners = await resolve_owners(self.store, [item for _, item in accepted])
        accepted_at = utc_now_iso()
        entries = [
            _timeline_entry(record, item, owner, accepted_at)
            for (record, item), owner in zip(accepted, owners, strict=True)
        ]
        results = await self.store.add(entries)
        out.extend(
            self._publish(e) for e, r in zip(entries, results, strict=True)
            if r is not AddResult.DUPLICATE
        )
        provisional = sorted({owner for owner in owners if is_provisional(owner)})
        if provisional:
            for pid, cid in await claimed_provisionals(self.store, provisional):
                out.extend(self._publish(e) for e in await link(self.store, pid, cid))
        return out

    # -- customer records (cx.customers.v1, compacted) -----------------------

    async def customers(self, records: Sequence[Record]) -> list[Outgoing]:
        out: list[Outgoing] = []
        updates: list[tuple[str, dict | None]] = []
        for record in records:
            parsed = self._customer_update(record)
            if isinstance(parsed, Rejection):
                out.append(self._reject(record, parsed))
            else:
                updates.append(parsed)
        if not updates:
            return out

        ids = list(dict.fromkeys(cid for cid, _ in updates))
        current = dict(zip(ids, await self.store.profiles(ids), strict=True))
        changes: list[ProfileChange] = []
        for cid, new in updates:
            old_keys = customer_identity_keys(current[cid]) if current[cid] else []
            new_keys = customer_identity_keys(new) if new else []
            released = tuple(k for k in old_keys if k not in new_keys)
            changes.append(ProfileChange(cid, new, claimed=tuple(new_keys), released=released))
            current[cid] = new
        await self.store.apply_profiles(changes)
        out.extend(await self._link_claimed(changes, current))
        return out

    def _customer_update(self, record: Record) -> tuple[str, dict | None] | Rejection:
        if record.value is None:  # tombstone: erase the customer named by the key
            cid = (record.key or b"").decode("utf-8", "replace")
            if not cid or is_provisional(cid):
                return Rejection("no_customer", "tombstone without a customer_id key")
            return cid, None
        checked = check_customer(record.value)
        if isinstance(checked, Rejection):
            return checked
        return checked["customer_id"], checked

    async def _link_claimed(
        self, changes: Sequence[ProfileChange], final: dict[str, dict | None]
    ) -> list[Outgoing]:
        # Only the last state of each customer in the batch decides what it claims.
        claims = {
            provisional_id(key): c.customer_id
            for c in changes
            if final.get(c.customer_id) is not None
            for key in c.claimed
        }
        if not claims:
            return []
        pids = list(claims)
        out: list[Outgoing] = []
        for pid, exists in zip(pids, await self.store.exists_many(pids), strict=True):
            if exists:
                linked = await link(self.store, pid, claims[pid])
                log.debug("linked %d provisional entries to a customer", len(linked))
                out.extend(self._publish(e) for e in linked)
        return out

    # -- outgoing messages ----------------------------------------------------

    def _publish(self, entry: NewEntry) -> Outgoing:
        return Outgoing(self.topics.timeline, entry.customer_id.encode(), entry.body)

    def _reject(self, record: Record, rejection: Rejection) -> Outgoing:
        return dead_letter(record, rejection.reason, rejection.message, self.topics.deadletter)


def _timeline_entry(record: Record, item: Interaction, owner: str, accepted_at: str) -> NewEntry:
    """The normalised entry (schemas/timeline-entry.v1.json) for an accepted event."""
    entry: dict = {
        "event_id": item.event_id,
        "customer_id": owner,
        "channel": item.channel,
        "type": item.type,
        "occurred_at": item.occurred_at,
        "accepted_at": accepted_at,
        "payload": item.payload,
        "source": record.source,
    }
    if item.identity:
        entry["identity"] = item.identity
    if is_provisional(owner):
        entry["provisional"] = True
    return NewEntry(owner, item.event_id, item.occurred_ms, orjson.dumps(entry), record.source)
