"""The customer's own notes and preferences in Redis (written by the worker from
cx.self-service.v1; streams.self_service).

- `cxt:{C-1}:notes`: hash note_id -> note JSON (note_id, text, added_at, event_id).
- `cxt:{C-1}:prefs`: the latest preferences JSON (schemas/self-service.v1.json's
  preferences object plus `set_at`, `event_id` and `occurred_ms`).

Both live in the customer's slot, so they go with the customer's other keys on a
cluster and are erased with them.

Writes (`apply`) are one script call per change, all of a batch in one round trip
(store.scripts): a note added is set, a note deleted removed, and preferences
replace the stored ones only when newer (occurred ms, then event id), so a
redelivered batch, or preferences arriving out of order, change nothing.

A deleted note's text also leaves the customer's timeline: its `account.note_added`
entry stays (the history says a note was added, and its event id still tells a
replay from a new event) with the text replaced by null and `redacted: true`.  That
costs one more round trip, in batches that delete a note only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from kernel.redis_client import RedisClient
from store.keys import Keys
from store.scripts import ScriptCall, run_scripts

DEFAULT_NOTES = 50

NOTE_ADDED, NOTE_DELETED, PREFERENCES_SET = "note_added", "note_deleted", "preferences_set"

# KEYS: the notes hash, the preferences string.  ARGV: the change (NOTE_ADDED,
# NOTE_DELETED or PREFERENCES_SET), the note id (notes) or the occurred ms (preferences),
# the event id, the JSON to store.  Preferences are replaced only by newer ones: a later
# occurred ms, or the same ms and a greater event id (so two sets at one instant end the
# same whatever order they arrive in, and the same event twice changes nothing).
# A deletion also has KEYS[3], the timeline's entries hash, and ARGV[4], ARGV[5]: the
# note_added entry with its text redacted and that entry's event id ('' for none).
# Replies 1 when something changed, else 0.
_APPLY = """
if ARGV[1] == 'note_added' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
  return 1
elseif ARGV[1] == 'note_deleted' then
  if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[5]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[5], ARGV[4])
  end
  return redis.call('HDEL', KEYS[1], ARGV[2])
end
local current = redis.call('GET', KEYS[2])
if current then
  local ok, stored = pcall(cjson.decode, current)
  if ok and type(stored) == 'table' then
    local ms, new = tonumber(stored['occurred_ms']) or -1, tonumber(ARGV[2])
    if ms > new or (ms == new and tostring(stored['event_id']) >= ARGV[3]) then
      return 0
    end
  end
end
redis.call('SET', KEYS[2], ARGV[4])
return 1
"""

# KEYS: the notes hash, the timeline's entries hash.  ARGV: a note id.  Replies the
# timeline entry that added the note (JSON), or false when either is gone.
_ADDED_ENTRY = """
local note = redis.call('HGET', KEYS[1], ARGV[1])
if not note then return false end
local ok, decoded = pcall(cjson.decode, note)
if not ok or type(decoded) ~= 'table' or type(decoded['event_id']) ~= 'string' then
  return false
end
return redis.call('HGET', KEYS[2], decoded['event_id'])
"""


@dataclass(frozen=True, slots=True)
class AccountChange:
    """One change to a customer's notes or preferences, as the worker stores it."""

    customer_id: str  # where it is filed (the root of a merged customer)
    change: str  # NOTE_ADDED, NOTE_DELETED or PREFERENCES_SET
    event_id: str
    occurred_ms: int
    note_id: str | None = None  # notes only
    body: bytes = b""  # the note or preferences JSON; nothing for a deletion


@dataclass(frozen=True, slots=True)
class OwnWords:
    """What the customer told us themselves: notes newest first, and preferences."""

    notes: list[dict]
    preferences: dict | None


class SelfServiceStore:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._apply = redis.register_script(_APPLY)
        self._added_entry = redis.register_script(_ADDED_ENTRY)

    async def apply(self, changes: Sequence[AccountChange]) -> list[bool]:
        """Store the changes in order, one round trip (two when one deletes a note); per
        change whether it changed anything (False: a redelivery, an unknown note, or
        older preferences)."""
        if not changes:
            return []
        redacted = await self._redacted_entries([c for c in changes if c.change == NOTE_DELETED])
        calls: list[ScriptCall] = []
        for c in changes:
            keys = [self.keys.notes(c.customer_id), self.keys.preferences(c.customer_id)]
            args: list[str | int | bytes] = [
                c.change, c.occurred_ms if c.change == PREFERENCES_SET else c.note_id or "",
                c.event_id, c.body]
            if c.change == NOTE_DELETED:
                event_id, body = redacted.get((c.customer_id, c.note_id or ""), ("", b""))
                keys.append(self.keys.entries(c.customer_id))
                args[3:] = [body, event_id]
            calls.append((self._apply, keys, args))
        return [reply == 1 for reply in await run_scripts(self.redis, calls)]

    async def _redacted_entries(self, deletions: Sequence[AccountChange]
                                ) -> dict[tuple[str, str], tuple[str, bytes]]:
        """(customer, note id) -> (event id, body) of each deleted note's note_added
        timeline entry with the text taken out."""
        if not deletions:
            return {}
        replies = await run_scripts(self.redis, [
            (self._added_entry, [self.keys.notes(c.customer_id), self.keys.entries(c.customer_id)],
             [c.note_id or ""]) for c in deletions])
        found: dict[tuple[str, str], tuple[str, bytes]] = {}
        for change, reply in zip(deletions, replies, strict=True):
            if reply is None:
                continue
            entry = orjson.loads(reply)
            if isinstance(entry.get("payload"), dict):
                entry["payload"] = {**entry["payload"], "text": None}
            entry["redacted"] = True
            found[(change.customer_id, change.note_id or "")] = (entry["event_id"],
                                                                 orjson.dumps(entry))
        return found

    async def has_note(self, customer_id: str, note_id: str) -> bool:
        return bool(await self.redis.hexists(self.keys.notes(customer_id), note_id))

    async def note_count(self, customer_id: str) -> int:
        return int(await self.redis.hlen(self.keys.notes(customer_id)))

    async def erase(self, customer_id: str) -> None:
        """The customer's notes and preferences (an erasure)."""
        await self.redis.delete(self.keys.notes(customer_id),
                                self.keys.preferences(customer_id))

    async def own_words(self, customer_ids: Sequence[str],
                        limit: int = DEFAULT_NOTES) -> list[OwnWords]:
        """Notes (newest first, at most `limit`) and preferences of each customer: one
        round trip for all of them."""
        pipe = self.redis.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.hvals(self.keys.notes(customer_id))
            pipe.get(self.keys.preferences(customer_id))
        replies = await pipe.execute()
        found = []
        for index in range(len(customer_ids)):
            notes = [orjson.loads(body) for body in replies[2 * index]]
            notes.sort(key=lambda note: (note.get("added_at") or "", note.get("note_id") or ""),
                       reverse=True)
            prefs = replies[2 * index + 1]
            found.append(OwnWords(notes[:limit], None if prefs is None else orjson.loads(prefs)))
        return found

    async def notes(self, customer_id: str, limit: int = DEFAULT_NOTES) -> list[dict]:
        return (await self.own_words([customer_id], limit))[0].notes

    async def preferences(self, customer_id: str) -> dict | None:
        return (await self.own_words([customer_id]))[0].preferences
