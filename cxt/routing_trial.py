"""Does the routing hint help?  The same seeded contacts, assigned twice (offline, pure).

`cxt report routing` draws one stream of offered calls and chats from the traffic
model (the customers of `make_customers`, the agents of `make_agents`, the intents'
mix, the traffic's handle times) and hands each contact to an agent twice: once to a
random agent of those free at that moment, once to the top agent of
`domain.routing.recommend` among them, with the facts the traffic knows of the caller
(segment, VIP, language, open alerts from their own bottom-2-box surveys so far) and
the survey outcomes accumulated so far in that run as the history.  Each contact is
surveyed, and its score decided, by the same random draws in both arms (common random
numbers), so the only difference between the two bottom-2-box shares is who took the
contacts: the agent's skill level in the intent, language and, for VIPs and customers
with an open alert, tier
(`cxt.traffic.bottom2_factor`, the model the demo traffic's surveys follow too).

Agents are busy for the contact's handle time, and contacts arrive at a pace that keeps
OCCUPANCY of the available agents busy, so the hint cannot send everyone to the one
best agent: it chooses among those free, as a routing engine would.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cxt.traffic import (
    CHANNEL_WEIGHTS,
    bottom2_factor,
    draw_intent,
    make_agents,
    make_customers,
)
from domain.routing import (
    UNKNOWN_CALLER,
    Agent,
    Caller,
    Outcome,
    RoutingConfig,
    agent_from_record,
    caller_from,
    recommend,
)

# The chance that a surveyed contact scores bottom-2-box, before the agent's factor:
# with random assignment it comes to about the demo traffic's 12% (bottom2_share).
BASE_BOTTOM2 = 0.059
# Of the rest, the share scoring 4 or 5 (the traffic's survey_score: 35 + 45 of 100).
TOP2_OF_REST = 0.8
SURVEYED = 0.25  # of contacts; more than in life, so the figure settles sooner
UNKNOWN_SHARE = 0.03  # callers who are no known customer (the traffic's unknown_share)
OCCUPANCY = 0.8  # of the available agents' time, on average
HANDLE_MU, HANDLE_SIGMA = 5.6, 0.5  # seconds, lognormal: the traffic's call handle times
ALERT_OPEN_S = 2 * 86_400  # a bottom-2-box survey's alert counts as open this long
PROGRESS_EVERY = 1000  # contacts between calls of `progress`
CHANNELS = ("call", "chat")
_CHANNEL_WEIGHTS = tuple(CHANNEL_WEIGHTS[c] for c in CHANNELS)


@dataclass(frozen=True, slots=True)
class Offered:
    """One offered contact, and the draws that decide its survey in either arm."""

    at: float  # seconds into the run
    customer: dict[str, Any] | None  # None: an unknown caller
    intent: str
    channel: str
    handle: float  # seconds the agent is busy with it
    surveyed: bool
    bottom2_draw: float  # bottom-2-box when below the agent's chance
    top2_draw: float  # top-2-box (if not bottom-2-box) when below TOP2_OF_REST


def offered_contacts(seed: int, count: int, customers: Sequence[dict[str, Any]],
                     available: int) -> list[Offered]:
    rng = random.Random(f"routing-trial:{seed}")
    mean_handle = math.exp(HANDLE_MU + HANDLE_SIGMA ** 2 / 2)
    rate = OCCUPANCY * max(available, 1) / mean_handle  # contacts per second
    at = 0.0
    out = []
    for _ in range(count):
        at += rng.expovariate(rate)
        customer = None if rng.random() < UNKNOWN_SHARE else rng.choice(customers)
        out.append(Offered(at, customer, draw_intent(rng),
                           rng.choices(CHANNELS, weights=_CHANNEL_WEIGHTS)[0],
                           rng.lognormvariate(HANDLE_MU, HANDLE_SIGMA),
                           rng.random() < SURVEYED, rng.random(), rng.random()))
    return out


@dataclass
class Arm:
    name: str
    surveys: int = 0
    bottom2: int = 0
    top2: int = 0

    @property
    def bottom2_share(self) -> float:
        return self.bottom2 / self.surveys if self.surveys else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"surveys": self.surveys, "bottom2": self.bottom2, "top2": self.top2,
                "bottom2_share": round(self.bottom2_share, 4)}


@dataclass(frozen=True)
class TrialResult:
    seed: int
    contacts: int
    agents: int  # available, of all the records
    random: Arm
    hint: Arm

    @property
    def difference(self) -> float:
        """Percentage points, hint minus random: negative when the hint helps."""
        return 100 * (self.hint.bottom2_share - self.random.bottom2_share)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "contacts": self.contacts, "agents_available": self.agents,
                "random": self.random.to_json(), "hint": self.hint.to_json(),
                "difference_points": round(self.difference, 2)}

    def text(self) -> str:
        r, h = self.random, self.hint
        relative = (f" ({self.difference / (100 * r.bottom2_share):+.0%})"
                    if r.bottom2_share else "")
        return "\n".join((
            f"Routing trial, seed {self.seed}: {self.contacts:,} offered calls and chats, "
            f"{self.agents} agents available, the same contacts and survey draws in both arms",
            f"  random free agent    bottom-2-box {r.bottom2_share:6.2%}  "
            f"({r.bottom2:,} of {r.surveys:,} surveys)",
            f"  routing hint's top   bottom-2-box {h.bottom2_share:6.2%}  "
            f"({h.bottom2:,} of {h.surveys:,} surveys)",
            f"  difference           {self.difference:+.2f} percentage points{relative}",
        ))


Pick = Callable[[Offered, Caller, list[Agent], dict[str, Outcome]], Agent]


@dataclass
class _History:
    """What the run has learnt so far: the survey counters the hint reads."""

    by_intent: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    rated: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    alerts: dict[str, list[float]] = field(default_factory=dict)  # customer -> raised at

    def caller(self, contact: Offered) -> Caller:
        customer = contact.customer
        if customer is None:
            return UNKNOWN_CALLER
        cid = customer["customer_id"]
        raised = self.alerts.get(cid, ())
        open_alerts = sum(1 for at in raised if contact.at - at < ALERT_OPEN_S)
        return caller_from(cid, customer, None, open_alerts, False, self.rated.get(cid, {}))

    def record(self, contact: Offered, agent_id: str, bottom2: bool, top2: bool) -> None:
        outcomes = self.by_intent.setdefault(contact.intent, {})
        outcomes[agent_id] = _add(outcomes.get(agent_id), bottom2, top2)
        if contact.customer is not None:
            cid = contact.customer["customer_id"]
            mine = self.rated.setdefault(cid, {})
            mine[agent_id] = _add(mine.get(agent_id), bottom2, top2)
            if bottom2:
                self.alerts.setdefault(cid, []).append(contact.at)


def _add(outcome: Outcome | None, bottom2: bool, top2: bool) -> Outcome:
    o = outcome or Outcome()
    return Outcome(o.n + 1, o.t2 + top2, o.b2 + bottom2)


def run_arm(name: str, contacts: Sequence[Offered], agents: Sequence[Agent], pick: Pick,
            progress: Callable[[str, int], None] | None = None) -> Arm:
    """Each contact to the agent `pick` chooses among those free (or, when none is, to the
    one free soonest, once free); its survey decided by its own draws."""
    arm, history = Arm(name), _History()
    by_id = {agent.agent_id: agent for agent in agents}
    free = set(by_id)
    busy: list[tuple[float, str]] = []  # (free again at, agent_id)
    for done, contact in enumerate(contacts, 1):
        while busy and busy[0][0] <= contact.at:
            free.add(heapq.heappop(busy)[1])
        start = contact.at
        if not free and busy:
            start, agent_id = heapq.heappop(busy)
            free.add(agent_id)
        candidates = [by_id[agent_id] for agent_id in sorted(free)]
        caller = history.caller(contact)
        agent = pick(contact, caller, candidates, history.by_intent.get(contact.intent, {}))
        free.discard(agent.agent_id)
        heapq.heappush(busy, (max(start, contact.at) + contact.handle, agent.agent_id))
        if contact.surveyed:
            language = contact.customer.get("language") if contact.customer else None
            delicate = caller.vip or caller.open_alerts > 0
            factor = bottom2_factor(agent, contact.intent, language, delicate)
            bottom2 = contact.bottom2_draw < min(1.0, BASE_BOTTOM2 * factor)
            top2 = not bottom2 and contact.top2_draw < TOP2_OF_REST
            arm.surveys += 1
            arm.bottom2 += bottom2
            arm.top2 += top2
            history.record(contact, agent.agent_id, bottom2, top2)
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(name, done)
    return arm


def random_pick(seed: int) -> Pick:
    rng = random.Random(f"routing-trial-random:{seed}")

    def pick(_: Offered, __: Caller, candidates: list[Agent], ___: dict[str, Outcome]) -> Agent:
        return rng.choice(candidates)
    return pick


def hint_pick(config: RoutingConfig) -> Pick:
    def pick(contact: Offered, caller: Caller, candidates: list[Agent],
             outcomes: dict[str, Outcome]) -> Agent:
        hint = recommend(config, caller, intent=contact.intent, channel=contact.channel,
                         agents=candidates, outcomes=outcomes, limit=1)
        best = hint["agents"][0]["agent_id"]
        return next(agent for agent in candidates if agent.agent_id == best)
    return pick


def run_trial(config: RoutingConfig, *, seed: int = 7, contacts: int = 20_000,
              customers: int = 2000,
              progress: Callable[[str, int], None] | None = None) -> TrialResult:
    """Both arms on the same seeded contacts (only available agents take contacts)."""
    agents = [a for a in map(agent_from_record, make_agents(seed)) if a.available]
    offered = offered_contacts(seed, contacts, make_customers(customers, seed), len(agents))
    return TrialResult(seed, contacts, len(agents),
                       run_arm("random", offered, agents, random_pick(seed), progress),
                       run_arm("hint", offered, agents, hint_pick(config), progress))
