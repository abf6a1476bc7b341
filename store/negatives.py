"""What the negative-interaction signals remember between events, in Redis.

Two signals need more than the event in hand: the repeat contact (how many contacts
about this intent in the last days) and the abandoned call followed by another
contact.  Each customer has a hash of recent contacts and abandoned calls
(store.keys), read and written by one script call per batch (per cluster slot), so
the count is atomic with the insert: two workers counting the same customer cannot
both miss each other.  A contact is a field, so the started and ended events of one
call, or a redelivery, count once.

The same call counts each contact once as a contact reason (domain.contact_reasons):
the hash remembers what each contact was counted under, and the hour counters are
added to in the script on a single server (exact, through redeliveries), or by the
worker right after it on a cluster, where they live in other slots (a crash between
the two loses that batch's counts, never a signal).

"At most one open negative-interaction alert per customer and intent" is a hash of
intent -> alert id beside them, changed only by compare-and-set scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio.cluster import RedisCluster

from domain.survey_metrics import hour_of
from kernel.redis_client import RedisClient, text
from store.keys import Keys, slot_groups
from store.scripts import ScriptCall, run_scripts

# KEYS: per customer of the call its contact memory (a hash, store.keys), then on a
# single server the contact-reason counters of the hours in ARGV[7].  ARGV: repeat window
# ms, abandoned follow-up window ms, TTL s, counters TTL s, the repeat rule's N (0: off),
# the KEYS index of the first counters hash (0: none, reply the increments), a JSON array
# of those hours (epoch ms // 3,600,000), then one JSON array with per contact [customer
# number, contact, intent ("" for none), occurred ms, abandoned (0/1), a signal fired on
# it (0/1), its hour, its dimensions]: one argument for the batch, since redis-py's
# encoding of many small arguments costs the worker more than the script costs Redis.
#
# The hash holds per contact "<first ms>\x1f<intent>\x1f<hour>\x1f<dimensions>\x1f<flags>":
# the time of its first event to arrive (later events of it do not move it), the intent
# it is counted under for repeats, and its first count as a contact reason (flags: "r"
# once counted a repeat, "n" once negative), so a contact's events, and redeliveries,
# count once, and a flag later in the hour of its first count.  An abandoned call adds
# "\x1fa<contact>" -> its ms.  The hash is read once and written once per customer per
# call; it keeps the contacts of the last two windows, at most ARGV[9] (the newest).
# Replies per contact {contacts about its intent within the window up to it (0 without
# intent), the abandoned call it follows within the window or ""}, then the counter
# increments it could not make itself, flat: hour, field, n, ...
_SEEN = """
local window, gap, ttl, counters_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]), tonumber(ARGV[4])
local repeat_at, base = tonumber(ARGV[5]), tonumber(ARGV[6])
local span = math.max(window, gap)
local SEP, ABANDONED = '\\31', '\\31a'
local MAX_CONTACTS, MAX_ABANDONED = tonumber(ARGV[9]), 20
local increments, order = {}, {}
local function add(hour, field)
  local k = hour .. SEP .. field
  local found = increments[k]
  if found then
    found[3] = found[3] + 1
  else
    increments[k] = {tonumber(hour), field, 1}
    order[#order + 1] = k
  end
end
-- Per customer number: {contacts = {contact -> {at, intent, hour, dims, flags}},
-- abandoned = {contact -> ms}, changed = {field -> value}, grown = bool}.
local memory = {}
local function memory_of(c)
  local m = memory[c]
  if m then return m end
  m = {contacts = {}, abandoned = {}, changed = {}, grown = false}
  local all = redis.call('HGETALL', KEYS[c])
  for k = 1, #all, 2 do
    local field, value = all[k], all[k + 1]
    if string.sub(field, 1, 2) == ABANDONED then
      m.abandoned[string.sub(field, 3)] = tonumber(value)
    else
      -- Only the time and intent of every contact are needed; the rest when it is seen.
      local a = string.find(value, SEP, 1, true)
      local b = string.find(value, SEP, a + 1, true)
      m.contacts[field] = {tonumber(string.sub(value, 1, a - 1)), string.sub(value, a + 1, b - 1),
        false, string.sub(value, b + 1)}
    end
  end
  memory[c] = m
  return m
end
-- {ms, intent, hour, dims, flags} of a contact read from the hash (see memory_of).
local function full(known)
  if known[3] == false then
    local rest = known[4]
    local a = string.find(rest, SEP, 1, true)
    local b = string.find(rest, SEP, a + 1, true)
    known[3], known[4], known[5] = string.sub(rest, 1, a - 1), string.sub(rest, a + 1, b - 1),
      string.sub(rest, b + 1)
  end
  return known
end
-- Once `times` (key -> ms) holds a quarter more than `limit` keys: all but the newest
-- `limit` (so the sort runs once in many batches for a customer at the bound).
local function beyond(times, limit)
  local keys = {}
  for key in pairs(times) do keys[#keys + 1] = key end
  if #keys <= limit + math.floor(limit / 4) then return {} end
  table.sort(keys, function(x, y) return times[x] > times[y] end)
  local out = {}
  for i = limit + 1, #keys do out[#out + 1] = keys[i] end
  return out
end
local function keep(m, contact, known)
  m.changed[contact] = table.concat(known, SEP)
end
local newest, reply = {}, {}
for n, fact in ipairs(cjson.decode(ARGV[8])) do
  local c, contact, intent, at = fact[1], fact[2], fact[3], fact[4]
  local gave_up, negative, hour, dims = fact[5], fact[6], fact[7], fact[8]
  local m = memory_of(c)
  if not newest[c] or at > newest[c] then newest[c] = at end
  local known = m.contacts[contact]
  local is_new = known == nil
  if not is_new then full(known) end
  if is_new then
    known = {at, intent, tostring(hour), dims, ''}
    m.contacts[contact] = known
    m.grown = true
  end
  if gave_up == 1 and not m.abandoned[contact] then
    m.abandoned[contact] = at
    m.changed[ABANDONED .. contact] = at
    m.grown = true
  end
  local count, follows, follows_at = 0, '', nil
  if known[2] ~= '' then
    for _, other in pairs(m.contacts) do
      if other[2] == known[2] and other[1] <= at and other[1] >= at - window then
        count = count + 1
      end
    end
  end
  if gave_up ~= 1 and gap > 0 then
    for other, ms in pairs(m.abandoned) do
      if other ~= contact and ms <= at and ms >= at - gap
          and (follows_at == nil or ms < follows_at or (ms == follows_at and other < follows)) then
        follows, follows_at = other, ms
      end
    end
  end
  local is_repeat = count >= 2
  local is_negative = negative == 1 or (repeat_at > 0 and count >= repeat_at) or follows ~= ''
  local flags = known[5]
  local more = ''
  if is_new then
    add(known[3], 'c|' .. known[4])
  end
  if is_repeat and not string.find(flags, 'r', 1, true) then
    add(known[3], 'r|' .. known[4])
    more = 'r'
  end
  if is_negative and not string.find(flags, 'n', 1, true) then
    add(known[3], 'n|' .. known[4])
    more = more .. 'n'
  end
  if is_new or more ~= '' then
    known[5] = flags .. more
    keep(m, contact, known)
  end
  reply[n] = {count, follows}
end
-- Per customer: write what changed, forget what fell out of the windows, and refresh the
-- TTL only where something was added (a redelivery, or a contact's second event, adds
-- nothing).
for c, m in pairs(memory) do
  local key, cutoff = KEYS[c], newest[c] - 2 * span
  local gone, times, abandoned = {}, {}, {}
  for contact, known in pairs(m.contacts) do
    if known[1] < cutoff then
      gone[#gone + 1] = contact
      m.changed[contact] = nil
    else
      times[contact] = known[1]
    end
  end
  for contact, ms in pairs(m.abandoned) do
    if ms < cutoff then
      gone[#gone + 1] = ABANDONED .. contact
      m.changed[ABANDONED .. contact] = nil
    else
      abandoned[contact] = ms
    end
  end
  -- Bounded, so that a customer who contacts us all the time costs no more than this.
  for _, contact in ipairs(beyond(times, MAX_CONTACTS)) do
    gone[#gone + 1] = contact
    m.changed[contact] = nil
  end
  for _, contact in ipairs(beyond(abandoned, MAX_ABANDONED)) do
    gone[#gone + 1] = ABANDONED .. contact
    m.changed[ABANDONED .. contact] = nil
  end
  local pairs_ = {}
  for field, value in pairs(m.changed) do
    pairs_[#pairs_ + 1] = field
    pairs_[#pairs_ + 1] = value
  end
  if #pairs_ > 0 then redis.call('HSET', key, unpack(pairs_)) end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  if m.grown then redis.call('EXPIRE', key, ttl) end
end
local key_of = {}
if base > 0 then
  for i, hour in ipairs(cjson.decode(ARGV[7])) do key_of[hour] = KEYS[base + i - 1] end
end
local left, touched = {}, {}
for _, k in ipairs(order) do
  local inc = increments[k]
  local key = key_of[inc[1]]
  if key then
    redis.call('HINCRBY', key, inc[2], inc[3])
    touched[key] = true
  else
    left[#left + 1] = inc[1]
    left[#left + 1] = inc[2]
    left[#left + 1] = inc[3]
  end
end
for key in pairs(touched) do redis.call('EXPIRE', key, counters_ttl) end
reply[#reply + 1] = left
return reply
"""

# KEYS: per swap its customer's open-alert hash.  ARGV: per swap intent, alert id
# expected ("" for none), alert id to set.  Replies per swap the id there now: the one
# to set when the swap happened.
_SWAP = """
local replies = {}
for i = 1, #KEYS do
  local intent, expected, wanted = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  local current = redis.call('HGET', KEYS[i], intent) or ''
  if current == expected then
    redis.call('HSET', KEYS[i], intent, wanted)
    current = wanted
  end
  replies[i] = current
end
return replies
"""
# Swaps per call: one call per batch on a single server (per slot on a cluster).
SWAPS_PER_CALL = 500

# KEYS: the customer's open-alert hash.  ARGV: intent, alert id.  Forgets the alert
# as the open one, unless another has taken its place.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""

# Contacts per script call: one call per batch on a single server.
CONTACTS_PER_CALL = 1000
# A customer's newest contacts remembered (and its 20 newest abandoned calls), trimmed
# back to this once a quarter more: the repeat rule counts at most 100
# (config/signals.toml), and a customer who contacts us all the time costs no more than
# this per batch.
MAX_CONTACTS = 100
_HOUR_MS = 3_600_000


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class ContactFact:
    customer_id: str
    contact: str  # "<channel>:<id>" (domain.signals.contact_of)
    intent: str | None  # normalised; None: not counted for repeats
    occurred_ms: int
    abandoned: bool
    dimensions: str  # what it is counted under (domain.contact_reasons.dimensions)
    negative: bool = False  # a signal fired on the event on its own (domain.signals)


@dataclass(frozen=True, slots=True)
class ContactRules:
    """The windows of the two signals that need earlier contacts (config/signals.toml)."""

    repeat_window_ms: int
    abandoned_window_ms: int
    repeat_contacts: int  # the Nth contact about an intent is a repeat-contact signal; 0: off

    @property
    def ttl_s(self) -> int:
        return max(self.repeat_window_ms, self.abandoned_window_ms) * 2 // 1000 + 86_400


@dataclass(frozen=True, slots=True)
class Swap:
    customer_id: str
    intent: str | None
    expected: str | None  # the open alert's id as read; None: there was none
    alert_id: str


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class ContactSeen:
    same_intent: int  # contacts about its intent in the window up to it, itself included
    follows_abandoned: str | None  # the abandoned call's contact it follows, if any


class NegativeStore:
    def __init__(self, redis: RedisClient, keys: Keys, *, counters_ttl_days: int = 90) -> None:
        self.redis = redis
        self.keys = keys
        self.counters_ttl_s = counters_ttl_days * 86_400
        self.one_slot = not isinstance(redis, RedisCluster)
        self._seen = redis.register_script(_SEEN)
        self._swap = redis.register_script(_SWAP)
        self._release = redis.register_script(_RELEASE)

    async def see_contacts(self, facts: Sequence[ContactFact], rules: ContactRules
                           ) -> list[ContactSeen]:
        """Record each contact, count it once as a contact reason (domain.contact_reasons)
        and say what it follows: one round trip for the batch."""
        if not facts:
            return []
        groups = slot_groups(facts, lambda f: self.keys.contacts(f.customer_id),
                             CONTACTS_PER_CALL, one_slot=self.one_slot)
        calls = [self._seen_call(group, rules) for group in groups]
        seen: dict[int, ContactSeen] = {}
        left: list[tuple[int, str, int]] = []
        for group, replies in zip(groups, await run_scripts(self.redis, calls), strict=True):
            for f, (count, follows) in zip(group, replies[:-1], strict=True):
                seen[id(f)] = ContactSeen(int(count), text(follows) or None)
            rest = replies[-1]
            left += [(int(rest[i]), text(rest[i + 1]), int(rest[i + 2]))
                     for i in range(0, len(rest), 3)]
        if left:
            await self._increment(left)
        return [seen[id(f)] for f in facts]

    def _seen_call(self, group: Sequence[ContactFact], rules: ContactRules) -> ScriptCall:
        customers: dict[str, int] = {}
        for f in group:
            customers.setdefault(f.customer_id, len(customers) + 1)
        keys = [self.keys.contacts(cid) for cid in customers]
        # A cluster keeps the counters in other slots: the worker adds them (`_increment`).
        hours = sorted({f.occurred_ms // _HOUR_MS + d for f in group for d in (-1, 0, 1)}
                       ) if self.one_slot else []
        base = len(keys) + 1 if hours else 0
        keys += [self.keys.contact_counters(hour_of(h * _HOUR_MS)) for h in hours]
        facts = orjson.dumps([
            (customers[f.customer_id], f.contact, f.intent or "", f.occurred_ms,
             int(f.abandoned), int(f.negative), f.occurred_ms // _HOUR_MS, f.dimensions)
            for f in group])
        return (self._seen, keys, [rules.repeat_window_ms, rules.abandoned_window_ms,
                                   rules.ttl_s, self.counters_ttl_s, rules.repeat_contacts,
                                   base, orjson.dumps(hours), facts, MAX_CONTACTS])

    async def _increment(self, increments: Sequence[tuple[int, str, int]]) -> None:
        """Counter increments (hour number, field, n) the script could not make itself."""
        pipe = self.redis.pipeline(transaction=False)
        for hour in {h for h, _, _ in increments}:
            pipe.expire(self.keys.contact_counters(hour_of(hour * _HOUR_MS)), self.counters_ttl_s)
        for hour, name, n in increments:
            pipe.hincrby(self.keys.contact_counters(hour_of(hour * _HOUR_MS)), name, n)
        await pipe.execute()

    async def open_ids(self, customer_ids: Sequence[str]) -> list[dict[str, str]]:
        """Per customer: intent ("" for none) -> the id of its open alert."""
        pipe = self.redis.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.hgetall(self.keys.open_negative(cid))
        return [{text(k): text(v) for k, v in found.items()} for found in await pipe.execute()]

    async def swap(self, customer_id: str, intent: str | None, expected: str | None,
                   alert_id: str) -> str:
        """Make `alert_id` the open alert for the intent if `expected` still is (None: if
        there is none); the id that is the open one afterwards."""
        return (await self.swap_many([Swap(customer_id, intent, expected, alert_id)]))[0]

    async def swap_many(self, swaps: Sequence[Swap]) -> list[str]:
        """`swap` for each, in one round trip."""
        if not swaps:
            return []
        groups = slot_groups(swaps, lambda s: self.keys.open_negative(s.customer_id),
                             SWAPS_PER_CALL, one_slot=self.one_slot)
        replies = await run_scripts(self.redis, [
            (self._swap, [self.keys.open_negative(s.customer_id) for s in group],
             [part for s in group for part in (s.intent or "", s.expected or "", s.alert_id)])
            for group in groups])
        now = {id(s): text(reply) for group, got in zip(groups, replies, strict=True)
               for s, reply in zip(group, got, strict=True)}
        return [now[id(s)] for s in swaps]

    async def release(self, customer_id: str, intent: str | None, alert_id: str) -> None:
        await run_scripts(self.redis, [(
            self._release, [self.keys.open_negative(customer_id)], [intent or "", alert_id])])

    async def erase_customer(self, customer_id: str) -> None:
        await self.redis.delete(self.keys.contacts(customer_id),
                                self.keys.open_negative(customer_id))

    async def merge_into(self, source: str, to: str) -> None:
        """Fold a merged customer's contact memory and open-alert claims into the root's
        (the root's own win where both hold one), then drop the merged customer's.
        They stay with the root after an unmerge: they only steer detection."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.contacts(source))
        pipe.hgetall(self.keys.open_negative(source))
        pipe.ttl(self.keys.contacts(source))
        contacts, open_, ttl = await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for target, fields in ((self.keys.contacts(to), contacts),
                               (self.keys.open_negative(to), open_)):
            for name, value in fields.items():
                pipe.hsetnx(target, name, value)
        if contacts and ttl > 0:
            pipe.expire(self.keys.contacts(to), ttl, nx=True)
        pipe.delete(self.keys.contacts(source), self.keys.open_negative(source))
        await pipe.execute()
