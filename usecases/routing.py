"""The routing hint: which queue, tier and agents suit a contact while the caller waits.

Shared by `GET /api/routing` (dashboard/api.py), which names the caller by phone,
e-mail or customer id, and the worker's hints on cx.routing.v1 (streams.routing), whose
offered contacts were resolved already.  Either way: resolve the caller with the
identity index (a shared identifier is not guessed: the caller is unknown, reason
"ambiguous"), read everything Redis holds that routing uses (store.agents) in one
round trip (for a whole batch; for one phone or e-mail on a single server the
resolution is in that same call), and rank with the pure `domain.routing.recommend`.
The agents and their outcomes per intent come from the processes' cache
(store.agents.AgentCache).  An unknown caller gets the default answer, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.identity import MAX_CHAIN, NeverMatch, choose_owner, is_ambiguous, is_provisional
from domain.routing import (
    UNKNOWN_CALLER,
    Agent,
    Caller,
    Outcome,
    RoutingConfig,
    caller_from,
    recommend,
)
from kernel.errors import CxtError
from schemas.validate import identity_keys
from store.agents import AgentCache, AgentStore, CallerReads
from store.identities import IdentityStore

HINT_CHANNELS: tuple[str, ...] = ("call", "chat", "email")
DEFAULT_CHANNEL = "call"
LOOKUPS: tuple[str, ...] = ("phone", "email", "customer_id")
MAX_INTENT_LENGTH = 64  # schemas/agent.v1.json: a skill's name

# schemas/envelope.v1.json's identity.phone and identity.email, and customer.v1's id.
_PHONE = re.compile(r"^\s*\+[1-9](?: ?[0-9]){6,14}\s*$")
_EMAIL = re.compile(r"^\s*[^@\s]+@[^@\s]+\s*$")
_CUSTOMER_ID = re.compile(r"^[^~}\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,127}$")


class BadRoutingInput(CxtError):
    """A lookup that cannot be right whatever is stored; `field` names the part."""

    exit_status = 2

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class Lookup:
    """How the contact platform names the caller: exactly one of these."""

    field: str  # phone | email | customer_id
    value: str


def lookup_from(*, phone: str | None = None, email: str | None = None,
                customer_id: str | None = None) -> Lookup:
    """The one lookup given, checked; BadRoutingInput otherwise."""
    given = [(name, value) for name, value in
             (("phone", phone), ("email", email), ("customer_id", customer_id))
             if value is not None]
    if not given:
        raise BadRoutingInput("phone, email or customer_id",
                              "one of them must name the caller (none was given)")
    if len(given) > 1:
        raise BadRoutingInput(", ".join(name for name, _ in given),
                              "give only one of phone, email or customer_id")
    name, value = given[0]
    if name == "phone":
        # A "+" in a query string is a space unless written %2B: take it as meant.
        if value.startswith(" ") and value[1:2].isdigit():
            value = "+" + value[1:]
        if not _PHONE.match(value):
            raise BadRoutingInput(name, "must be an E.164 phone number like '+442071234567' "
                                        "(write the + as %2B in a URL)")
    elif name == "email" and (len(value) > 254 or not _EMAIL.match(value)):
        raise BadRoutingInput(name, "must be an e-mail address like 'ada@example.org'")
    elif name == "customer_id" and not _CUSTOMER_ID.match(value):
        raise BadRoutingInput(name, "must be a customer id: 1-128 characters, not starting "
                                    "with '~' or '}', no control characters")
    return Lookup(name, value)


def check_intent(intent: str | None) -> str | None:
    if intent is None or not intent.strip():
        return None
    if len(intent) > MAX_INTENT_LENGTH:
        raise BadRoutingInput("intent", f"is longer than {MAX_INTENT_LENGTH} characters")
    return intent.strip()


@dataclass(frozen=True)
class Router:
    """What a hint is computed from: the stores, the parsed agents and the routing file."""

    identities: IdentityStore
    agents: AgentStore
    cache: AgentCache
    config: RoutingConfig
    never: NeverMatch = field(default_factory=NeverMatch)


@dataclass(frozen=True, slots=True)
class Ask:
    """One hint to give.  `customer_id` None: the caller is not known, for `unknown`'s
    reason ({"factor", "detail"})."""

    customer_id: str | None
    intent: str | None
    channel: str
    unknown: dict[str, str] | None = None


async def routing_hint(router: Router, lookup: Lookup, *, intent: str | None,
                       channel: str, now_ms: int) -> dict:
    """The hint for one caller named by phone, e-mail or customer id: one Redis round
    trip (a phone or e-mail is resolved in the same call on a single server; the
    customers sharing one, or merged ones, take more)."""
    keys = router.never.keep(identity_keys({lookup.field: lookup.value})) \
        if lookup.field != "customer_id" else []
    if not keys or not router.agents.one_slot:
        ask = await resolve(router, lookup, intent=intent, channel=channel)
        return (await routing_hints(router, [ask], now_ms))[0]
    shared = await _shared(router, [intent] if intent else [], now_ms)
    claimants, reads = await router.agents.read_by_identifier(
        keys[0], shared.agent_ids, shared.missing, shared.months)
    shared.add(router, reads.outcomes)
    if len(claimants) == 1:
        found = {c.customer_id: c for c in reads.callers}
        await _follow_merges(router, found)
        return _hint(router, Ask(claimants[0], intent, channel), found, shared)
    ask = await _ask_for(router, lookup, keys, claimants, intent=intent, channel=channel)
    return (await routing_hints(router, [ask], now_ms))[0]


async def resolve(router: Router, lookup: Lookup, *, intent: str | None,
                  channel: str) -> Ask:
    """Who is calling: the customer, or nobody known and why (one round trip for a
    phone or e-mail; a shared one reads the claimants' merges too)."""
    if lookup.field == "customer_id":
        return Ask(lookup.value, intent, channel)
    keys = router.never.keep(identity_keys({lookup.field: lookup.value}))
    claimants = (await router.identities.claimants(keys))[0] if keys else ()
    return await _ask_for(router, lookup, keys, claimants, intent=intent, channel=channel)


async def _ask_for(router: Router, lookup: Lookup, keys: Sequence[str],
                   claimants: Sequence[str], *, intent: str | None, channel: str) -> Ask:
    """The ask for a phone or e-mail that these customers claim."""
    what = "phone number" if lookup.field == "phone" else "e-mail address"
    if not keys:
        return Ask(None, intent, channel, {"factor": "not_matched", "detail":
                   f"the {what} is one the identity settings never match on"})
    if not claimants:
        return Ask(None, intent, channel, {"factor": "not_found", "detail":
                   f"no customer record lists the {what}"})
    if len(claimants) == 1:
        return Ask(claimants[0], intent, channel)
    merges = await router.identities.merged_into(claimants)
    owner = choose_owner(None, keys, [tuple(claimants)], merges, router.never)
    if is_ambiguous(owner.root) or is_provisional(owner.root):
        return Ask(None, intent, channel, {"factor": "ambiguous", "detail":
                   f"{len(claimants)} customers share the {what}: nobody is guessed"})
    return Ask(owner.root, intent, channel)


@dataclass
class _Shared:
    """What every hint of a call shares: the agents and their outcomes per intent, and
    the outcomes the cache does not hold (`missing`, read with the callers)."""

    agents: list[Agent]
    agent_ids: list[str]
    months: tuple[str, str]
    outcomes: dict[str, dict[str, Outcome]]
    missing: list[str]

    def add(self, router: Router, read: dict[str, dict[str, Outcome]]) -> None:
        for intent, outcomes in read.items():
            router.cache.keep(intent, outcomes)
            self.outcomes[intent] = outcomes


async def _shared(router: Router, intents: Sequence[str], now_ms: int) -> _Shared:
    agents = await router.cache.agents()
    months = months_back(now_ms)
    outcomes = {i: kept for i in set(intents)
                if (kept := router.cache.outcomes(i, months)) is not None}
    return _Shared(agents, [a.agent_id for a in agents if a.available], months, outcomes,
                   sorted(set(intents) - set(outcomes)))


async def routing_hints(router: Router, asks: Sequence[Ask], now_ms: int) -> list[dict]:
    """Each ask's hint: the agents (cached), then one pipeline for every caller and the
    agents' outcomes on the intents asked about that the cache does not hold (more
    round trips only for merged customers)."""
    shared = await _shared(router, [a.intent for a in asks if a.intent], now_ms)
    wanted = sorted({a.customer_id for a in asks if a.customer_id is not None})
    reads = await router.agents.read(wanted, shared.agent_ids, shared.missing, shared.months)
    shared.add(router, reads.outcomes)
    found = {c.customer_id: c for c in reads.callers}
    await _follow_merges(router, found)
    return [_hint(router, ask, found, shared) for ask in asks]


def _hint(router: Router, ask: Ask, found: dict[str, CallerReads], shared: _Shared) -> dict:
    caller = UNKNOWN_CALLER
    reasons: list[dict[str, str]] = []
    if ask.customer_id is not None:
        facts = _root_facts(found, ask.customer_id)
        if facts.customer_id != ask.customer_id:
            reasons.append({"factor": "merged", "detail":
                            f"{ask.customer_id} is merged into {facts.customer_id}"})
        if facts.profile is None and not facts.known:
            reasons.append({"factor": "not_found", "detail":
                            f"no customer {ask.customer_id!r} is on record"})
        else:
            caller = _caller(facts)
    elif ask.unknown is not None:
        reasons.append(ask.unknown)
    hint = recommend(router.config, caller, intent=ask.intent, channel=ask.channel,
                     agents=shared.agents, outcomes=shared.outcomes.get(ask.intent or "", {}))
    hint["reasons"] = reasons + hint["reasons"]
    return hint


def _caller(facts: CallerReads) -> Caller:
    return caller_from(facts.customer_id, facts.profile, facts.preferences,
                       facts.open_alerts, facts.negative, facts.rated)


async def _follow_merges(router: Router, found: dict[str, CallerReads]) -> None:
    """Read the roots of merged callers too (their timeline, alerts and ratings are
    there): a round trip per level of merges, none when nobody is merged."""
    for _ in range(MAX_CHAIN):
        roots = sorted({c.merged_into for c in found.values()
                        if c.merged_into is not None and c.merged_into not in found})
        if not roots:
            return
        for facts in (await router.agents.read(roots, [], [], [])).callers:
            found[facts.customer_id] = facts


def _root_facts(found: dict[str, CallerReads], customer_id: str) -> CallerReads:
    facts = found[customer_id]
    for _ in range(MAX_CHAIN):
        if facts.merged_into is None or facts.merged_into not in found:
            break
        facts = found[facts.merged_into]
    return facts


def months_back(now_ms: int) -> tuple[str, str]:
    """This UTC month and the one before, "YYYYMM": the outcomes a hint weighs."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{now.year:04d}{now.month:02d}", f"{year:04d}{month:02d}"

