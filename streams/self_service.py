"""The customers' own notes and preferences (cx.self-service.v1): validate -> file in the
timeline -> keep the notes and the newest preferences -> publish.

Each accepted event becomes a timeline entry of channel `account` (its type and payload
as received), filed like an interaction: under the customer, or under the customer it
is merged into (`streams.identity.file_entries`).  The same events change the notes
hash and the preferences of that customer (`store.self_service`).  A batch costs a
constant number of round trips whatever its size: the timeline insert (one more per
link of a merge chain, only when an event's customer is merged), one for all the
changes, and one more in a batch that deletes a note (its text is redacted from the
timeline too).

Redelivery changes nothing: the timeline insert tells a redelivered event from a new
one, a redelivered note is set again to the same value, a deletion deletes nothing
more, and preferences are replaced only by newer ones.  An event whose id is already
in the timeline from another record (a source duplicate, a replay) is neither
published nor applied again, so replaying an old `note_added` cannot bring back a
note deleted since.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from domain.records import TimelineEntry
from kernel.times import iso_ms, utc_now_iso
from schemas.validate import AccountEvent, Rejection, check_self_service
from store.identities import IdentityStore
from store.self_service import (
    NOTE_ADDED,
    NOTE_DELETED,
    PREFERENCES_SET,
    AccountChange,
    SelfServiceStore,
)
from store.timeline import AddResult, NewEntry, TimelineStore
from streams.identity import file_entries
from streams.records import Messages, Outgoing, Record

CHANNEL = "account"
_CHANGE_OF = {"account.note_added": NOTE_ADDED, "account.note_deleted": NOTE_DELETED,
              "account.preferences_set": PREFERENCES_SET}


class SelfServiceSteps:
    def __init__(self, messages: Messages, timelines: TimelineStore, identities: IdentityStore,
                 store: SelfServiceStore, *, max_bytes: int) -> None:
        self.messages = messages
        self.timelines = timelines
        self.identities = identities
        self.store = store
        self.max_bytes = max_bytes

    async def events(self, records: Sequence[Record]) -> list[Outgoing]:
        out: list[Outgoing] = []
        accepted: list[tuple[Record, AccountEvent]] = []
        for record in records:
            checked = check_self_service(record.value, max_bytes=self.max_bytes)
            if isinstance(checked, Rejection):
                out.append(self.messages.reject(record, checked))
            else:
                accepted.append((record, checked))
        if not accepted:
            return out
        accepted_at = utc_now_iso()
        filed, added = await file_entries(
            self.timelines, self.identities,
            [account_entry(record, event, accepted_at) for record, event in accepted])
        kept = [(entry, event) for entry, result, (_, event)
                in zip(filed, added.results, accepted, strict=True)
                if result is not AddResult.DUPLICATE]
        await self.store.apply([account_change(entry.customer_id, event)
                                for entry, event in kept])
        out.extend(self.messages.entry(entry) for entry, _ in kept)
        return out


def account_entry(record: Record, event: AccountEvent, accepted_at: str) -> NewEntry:
    """The timeline entry (schemas/timeline-entry.v1.json, channel `account`)."""
    # event_id, customer_id and channel first: store.timeline.is_survey_body relies on it.
    entry: TimelineEntry = {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "channel": CHANNEL,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "accepted_at": accepted_at,
        "payload": event.payload,
        "source": record.source,
        "actor": event.actor,
    }
    return NewEntry(event.customer_id, event.event_id, event.occurred_ms, orjson.dumps(entry),
                    record.source, entry)


def account_change(customer_id: str, event: AccountEvent) -> AccountChange:
    """What the event changes in the notes or preferences of `customer_id` (where the
    event was filed)."""
    change = _CHANGE_OF[event.type]
    at = iso_ms(event.occurred_ms)
    if change == NOTE_ADDED:
        note = {"note_id": event.payload["note_id"], "text": event.payload["text"],
                "added_at": at, "event_id": event.event_id}
        return AccountChange(customer_id, change, event.event_id, event.occurred_ms,
                             note["note_id"], orjson.dumps(note))
    if change == NOTE_DELETED:
        return AccountChange(customer_id, change, event.event_id, event.occurred_ms,
                             event.payload["note_id"])
    preferences = {**event.payload, "set_at": at, "event_id": event.event_id,
                   "occurred_ms": event.occurred_ms}
    return AccountChange(customer_id, change, event.event_id, event.occurred_ms,
                         body=orjson.dumps(preferences))
