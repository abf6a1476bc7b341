"""The routing hint: which queue, which tier and which available agents suit a contact
while the caller waits, and why (pure: no I/O).

`recommend` ranks the available agents by points from independent factors, each with
the weight it was given in config/routing.toml (or CXT_ROUTING_RULES) and a detail a
person can read: the intent x the agent's skill level, the caller's language, the tier
the caller's situation asks for (VIP, open alerts, a negative signal), the queue the
hint recommends, this customer's own survey answers about the agent, and the agent's
top-2-box share on the intent, shrunk towards a prior so that one survey cannot decide.
With no history at all the skill, language, tier and queue factors still route well;
history only adds to them.  An unknown caller gets the intent's queue and the agents
ranked by skill alone (`default` true), never an error.

It runs in the caller's wait for every offered contact, so the ranking loop adds plain
numbers and the readable reasons are built only for the agents returned.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kernel.config_checks import reject_unknown
from kernel.errors import ConfigError

DEFAULT_ROUTING_PATH = Path(__file__).resolve().parent.parent / "config" / "routing.toml"

# Lowest first: a hint asking for "standard" accepts standard and senior agents.
TIERS: tuple[str, ...] = ("junior", "standard", "senior")
_TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}
NO_TIER = "none"
_STANDARD = _TIER_RANK["standard"]  # the rank of a tier no one listed
DEFAULT_LIMIT = 5


class RoutingConfigError(ConfigError):
    """The routing file cannot be used; the message names the file, section and key."""


# --------------------------------------------------------------------------- the facts

@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    name: str | None
    skills: dict[str, int]  # intent -> level 1..5
    languages: tuple[str, ...]  # lower-case BCP 47 tags
    tier: str
    queues: tuple[str, ...]
    available: bool


def agent_from_record(record: Mapping[str, Any]) -> Agent:
    """An agent from its cx.agents.v1 record (schemas/agent.v1.json); read defensively,
    because a record that passed an older schema must not stop the ranking: a level
    outside 1..5 is clamped, an unknown tier counts as standard, and a record that does
    not say whether the agent is available counts as available."""
    skills: dict[str, int] = {}
    raw_skills = record.get("skills")
    if isinstance(raw_skills, Mapping):
        for skill, level in raw_skills.items():
            if isinstance(level, int | float) and not isinstance(level, bool) and level >= 1:
                skills[str(skill)] = min(5, int(level))
    languages = record.get("languages")
    queues = record.get("queues")
    tier = record.get("tier")
    name = record.get("name")
    return Agent(
        agent_id=str(record["agent_id"]),
        name=name if isinstance(name, str) else None,
        skills=skills,
        languages=tuple(str(tag).strip().lower() for tag in languages
                        if isinstance(tag, str) and tag.strip())
        if isinstance(languages, list) else (),
        tier=tier if tier in _TIER_RANK else "standard",
        queues=tuple(q for q in queues if isinstance(q, str)) if isinstance(queues, list) else (),
        available=record.get("available", True) is not False,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """Surveys counted: all of them (n), top-2-box (t2) and bottom-2-box (b2)."""

    n: int = 0
    t2: int = 0
    b2: int = 0


_NO_RATINGS: Mapping[str, Outcome] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Caller:
    customer_id: str | None  # None: the caller is not known
    segment: str | None
    vip: bool
    language: str | None  # lower-case BCP 47 tag
    open_alerts: int
    negative: bool  # a negative-interaction signal is open for this customer
    rated: Mapping[str, Outcome]  # agent_id -> this customer's surveys naming that agent


UNKNOWN_CALLER = Caller(None, None, False, None, 0, False, _NO_RATINGS)


def caller_from(customer_id: str | None, profile: Mapping[str, Any] | None,
                preferences: Mapping[str, Any] | None, open_alerts: int, negative: bool,
                rated: Mapping[str, Outcome]) -> Caller:
    """The caller's facts: the customer's own language preference wins over the CRM's."""
    profile = profile or {}
    language = (preferences or {}).get("language") or profile.get("language")
    segment = profile.get("segment")
    segment = segment if isinstance(segment, str) and segment else None
    return Caller(
        customer_id=customer_id,
        segment=segment,
        vip=segment == "vip" or profile.get("vip") is True,
        language=(language.strip().lower() or None) if isinstance(language, str) else None,
        open_alerts=max(0, int(open_alerts)),
        negative=bool(negative),
        rated=rated,
    )


# --------------------------------------------------------------------------- the file

@dataclass(frozen=True)
class Weights:
    """Points per factor (docs in config/routing.toml); all >= 0, penalties subtract."""

    skill: float = 10.0
    language_match: float = 40.0
    language_mismatch: float = 40.0
    tier_met: float = 20.0
    tier_short: float = 20.0
    queue: float = 15.0
    customer_rated: float = 15.0
    customer_rated_cap: float = 45.0
    intent_outcomes: float = 100.0


@dataclass(frozen=True)
class RoutingConfig:
    default_queue: str = "general"
    intent_queues: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({
        "billing": "billing", "technical": "technical", "cancellation": "retention",
        "sales": "sales", "delivery": "orders", "account": "accounts"}))
    vip_queue: str | None = "priority"
    segment_queues: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"business": "business"}))
    tier_vip: str | None = "senior"
    tier_open_alerts: str | None = "senior"
    tier_negative: str | None = "senior"
    weights: Weights = Weights()
    prior_top2_share: float = 0.6
    prior_weight: float = 20.0
    source: str = "(defaults)"

    def queue_for(self, intent: str | None) -> str:
        return self.intent_queues.get(intent, self.default_queue) if intent else \
            self.default_queue


_TOP = ("queues", "escalation", "tier", "weights", "history")
_QUEUES = ("default", "by_intent")
_ESCALATION = ("vip_queue", "by_segment")
_TIER = ("vip", "open_alerts", "negative")
_HISTORY = ("prior_top2_share", "prior_weight")
_MAX_WEIGHT = 1000.0


def load_routing_config(path: str | Path = DEFAULT_ROUTING_PATH) -> RoutingConfig:
    """Read and check a routing file; RoutingConfigError says what is wrong and where."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: undecodable, or a NUL in the path
        raise RoutingConfigError(f"{source}: cannot read the routing file: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise RoutingConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_routing_config(document, source)


def parse_routing_config(document: Mapping[str, Any], source: str) -> RoutingConfig:
    """A key left out takes the default the shipped file shows; nothing is ignored."""
    reject_unknown(document, _TOP, f"{source}: top level", RoutingConfigError)
    d = RoutingConfig()
    queues = _section(document, "queues", _QUEUES, source)
    escalation = _section(document, "escalation", _ESCALATION, source)
    tier = _section(document, "tier", _TIER, source)
    weights = _section(document, "weights", tuple(f.name for f in fields(Weights)), source)
    history = _section(document, "history", _HISTORY, source)
    w = Weights()
    return RoutingConfig(
        default_queue=_queue(queues, "default", d.default_queue, f"{source}: [queues]") or "",
        intent_queues=_queue_map(queues, "by_intent", d.intent_queues,
                                 f"{source}: [queues.by_intent]"),
        vip_queue=_queue(escalation, "vip_queue", d.vip_queue or "", f"{source}: [escalation]",
                         blank=True),
        segment_queues=_queue_map(escalation, "by_segment", d.segment_queues,
                                  f"{source}: [escalation.by_segment]"),
        tier_vip=_tier(tier, "vip", d.tier_vip, f"{source}: [tier]"),
        tier_open_alerts=_tier(tier, "open_alerts", d.tier_open_alerts, f"{source}: [tier]"),
        tier_negative=_tier(tier, "negative", d.tier_negative, f"{source}: [tier]"),
        weights=Weights(**{f.name: _number(weights, f.name, getattr(w, f.name), 0, _MAX_WEIGHT,
                                           f"{source}: [weights]") for f in fields(Weights)}),
        prior_top2_share=_number(history, "prior_top2_share", d.prior_top2_share, 0, 1,
                                 f"{source}: [history]"),
        prior_weight=_number(history, "prior_weight", d.prior_weight, 0, 100_000,
                             f"{source}: [history]"),
        source=source,
    )


def _section(document: Mapping[str, Any], name: str, keys: tuple[str, ...],
             source: str) -> Mapping[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise RoutingConfigError(f"{source}: {name} must be a section, written [{name}]")
    reject_unknown(table, keys, f"{source}: [{name}]", RoutingConfigError)
    return table


def _queue(table: Mapping[str, Any], key: str, default: str, where: str, *,
           blank: bool = False) -> str | None:
    value = table.get(key, default)
    if not isinstance(value, str) or (not blank and not value.strip()):
        allowed = "a queue name in quotes" + (', or "" for none' if blank else "")
        raise RoutingConfigError(f"{where}: {key} must be {allowed} (got {value!r})")
    return value.strip() or None


def _queue_map(table: Mapping[str, Any], key: str, default: Mapping[str, str],
               where: str) -> Mapping[str, str]:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, dict):
        raise RoutingConfigError(f"{where}: must be a section of name = \"queue\" lines")
    out: dict[str, str] = {}
    for name, queue in value.items():
        if not isinstance(queue, str) or not queue.strip():
            raise RoutingConfigError(f"{where}: {name} must be a queue name in quotes "
                                     f"(got {queue!r})")
        out[name] = queue.strip()
    return MappingProxyType(out)


def _tier(table: Mapping[str, Any], key: str, default: str | None, where: str) -> str | None:
    value = table.get(key, default or NO_TIER)
    if not isinstance(value, str) or (value != NO_TIER and value not in _TIER_RANK):
        choices = ", ".join(f'"{t}"' for t in (*TIERS, NO_TIER))
        raise RoutingConfigError(f"{where}: {key} must be one of {choices} (got {value!r})")
    return None if value == NO_TIER else str(value)


def _number(table: Mapping[str, Any], key: str, default: float, low: float, high: float,
            where: str) -> float:
    value = table.get(key, default)
    # bool is an int in Python, but `skill = true` is a mistake, not 1.
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not low <= value <= high):
        raise RoutingConfigError(f"{where}: {key} must be a number from {low:g} to {high:g} "
                                 f"(got {value!r})")
    return float(value)


# --------------------------------------------------------------------------- the ranking

@dataclass(frozen=True, slots=True)
class _Ask:
    """What one hint asks of every agent, worked out once per call."""

    known: bool
    skill: str | None
    queue: str
    language: str | None  # the primary subtag: "en-GB" asks for any "en"
    tier: str | None
    tier_rank: int
    prior: float  # the top-2-box share an agent without history is assumed to have
    rated: Mapping[str, Outcome]
    outcomes: Mapping[str, Outcome]


def recommend(config: RoutingConfig, caller: Caller, *, intent: str | None, channel: str,
              agents: Sequence[Agent], outcomes: Mapping[str, Outcome],
              limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """The hint (schemas/routing-hint.v1.json without the envelope fields): the queue,
    skill, tier and language asked for with the reasons, and the best `limit` available
    agents with their points per factor.  `outcomes`: agent_id -> that agent's surveys
    on this intent.  Ties go to the lower agent_id, so the same facts give the same hint."""
    known = caller.customer_id is not None
    reasons: list[dict[str, str]] = []
    queue = config.queue_for(intent)
    if intent:
        mapped = intent in config.intent_queues
        reasons.append({"factor": "intent", "detail": f"intent {intent}: queue {queue}" if mapped
                        else f"intent {intent} has no queue in the routing file: "
                             f"the default queue {queue}"})
    else:
        reasons.append({"factor": "intent", "detail": f"no intent: the default queue {queue}"})
    tier: str | None = None
    language: str | None = None
    if not known:
        reasons.append({"factor": "unknown_caller", "detail":
                        "the caller is not a known customer: the intent's queue and agents "
                        "ranked by skill only"})
    else:
        queue = _escalate(config, caller, queue, reasons)
        tier = _tier_asked(config, caller, reasons)
        if caller.language:
            language = caller.language
            reasons.append({"factor": "language",
                            "detail": f"the customer's language is {language}"})
    ask = _Ask(known=known, skill=intent or None, queue=queue,
               language=language.split("-", 1)[0] if language else None,
               tier=tier, tier_rank=_TIER_RANK[tier] if tier else 0,
               prior=_prior(config, outcomes) if known and intent else config.prior_top2_share,
               rated=caller.rated, outcomes=outcomes)
    ranked = _rank(config, ask, agents)
    listed = [{"agent_id": agent.agent_id, "name": agent.name, "tier": agent.tier,
               "score": round(score, 2) + 0.0, "reasons": _explain(config, ask, agent)}
              for score, agent in ranked[:max(0, limit)]]
    if not ranked:
        reasons.append({"factor": "no_agents", "detail": "no agent is available"})
    nothing_to_go_on = (ask.skill is None and language is None and tier is None
                        and not caller.rated and queue == config.default_queue)
    return {
        "customer_id": caller.customer_id,
        "known": known,
        "intent": intent or None,
        "channel": channel,
        "queue": queue,
        "skill": ask.skill,
        "tier": tier,
        "language": language,
        "reasons": reasons,
        "agents": listed,
        "default": not known or nothing_to_go_on,
    }


def _escalate(config: RoutingConfig, caller: Caller, queue: str,
              reasons: list[dict[str, str]]) -> str:
    """The segment's queue, then the VIP queue over it: a VIP business customer is a VIP."""
    if caller.segment is not None and caller.segment in config.segment_queues:
        queue = config.segment_queues[caller.segment]
        reasons.append({"factor": "segment",
                        "detail": f"segment {caller.segment}: queue {queue}"})
    if caller.vip and config.vip_queue:
        queue = config.vip_queue
        reasons.append({"factor": "vip", "detail": f"VIP customer: queue {queue}"})
    return queue


def _tier_asked(config: RoutingConfig, caller: Caller,
                reasons: list[dict[str, str]]) -> str | None:
    asked: str | None = None
    for factor, tier, applies, why in (
            ("vip", config.tier_vip, caller.vip, "VIP customer"),
            ("open_alerts", config.tier_open_alerts, caller.open_alerts > 0,
             f"{caller.open_alerts} open alert{'s' if caller.open_alerts != 1 else ''}"),
            ("negative", config.tier_negative, caller.negative,
             "a negative-interaction signal is open")):
        if not applies:
            continue
        if tier is None:
            reasons.append({"factor": factor, "detail": f"{why} (asks for no tier)"})
            continue
        reasons.append({"factor": factor, "detail": f"{why}: a {tier} agent"})
        if asked is None or _TIER_RANK[tier] > _TIER_RANK[asked]:
            asked = tier
    return asked


def _prior(config: RoutingConfig, outcomes: Mapping[str, Outcome]) -> float:
    """The intent's pooled top-2-box share once there are as many surveys as the prior
    weighs, else the configured share: shrinking towards the floor's own level keeps an
    agent without history in the middle of the ranking, not at its top or bottom."""
    n = t2 = 0
    for outcome in outcomes.values():
        n += outcome.n
        t2 += outcome.t2
    return t2 / n if n and n >= config.prior_weight else config.prior_top2_share


def _rank(config: RoutingConfig, ask: _Ask, agents: Sequence[Agent]
          ) -> list[tuple[float, Agent]]:
    """(points, agent) of every available agent, best first: plain sums in one loop with
    everything it reads bound to locals (this is the part that grows with the floor);
    `_explain` gives the same points factor by factor (a test checks that they agree)."""
    w = config.weights
    skill, known, queue = ask.skill, ask.known, ask.queue
    language, tier, tier_rank = ask.language, ask.tier, ask.tier_rank
    rated, outcomes = ask.rated, ask.outcomes
    w_skill, w_queue, w_outcomes = w.skill, w.queue, w.intent_outcomes
    match, mismatch = w.language_match, -w.language_mismatch
    tier_met, tier_short = w.tier_met, w.tier_short
    per_rating, cap = w.customer_rated, w.customer_rated_cap
    prior, weight = ask.prior, config.prior_weight
    tier_ranks, known_primaries = _TIER_RANK, _PRIMARIES
    shrink = weight > 0
    scored: list[tuple[float, str, int, Agent]] = []
    for index, agent in enumerate(agents):
        if not agent.available:
            continue
        points = w_skill * agent.skills.get(skill, 0) if skill is not None else 0.0
        if known:
            if queue in agent.queues:
                points += w_queue
            if language is not None:
                primaries = known_primaries.get(agent.languages) or _primaries(agent.languages)
                points += match if language in primaries else mismatch
            if tier is not None:
                short = tier_rank - tier_ranks.get(agent.tier, _STANDARD)
                points += tier_met if short <= 0 else -tier_short * short
            if rated:
                mine = rated.get(agent.agent_id)
                if mine is not None and mine.n:
                    points += max(-cap, min(cap, per_rating * (mine.t2 - mine.b2)))
            if skill is not None:
                history = outcomes.get(agent.agent_id)
                if history is not None and history.n:
                    share = ((history.t2 + prior * weight) / (history.n + weight) if shrink
                             else history.t2 / history.n)
                    points += w_outcomes * (share - prior)
        # The index keeps two records of one agent_id from comparing the agents themselves.
        scored.append((-points, agent.agent_id, index, agent))
    scored.sort()
    return [(-negative, agent) for negative, _, _, agent in scored]


def _shrunk(t2: int, n: int, prior: float, weight: float) -> float:
    return (t2 + prior * weight) / (n + weight) if n + weight > 0 else prior


_PRIMARIES: dict[tuple[str, ...], frozenset[str]] = {}


def _primaries(languages: tuple[str, ...]) -> frozenset[str]:
    """The primary subtags of an agent's languages ("en-gb" -> "en"); few agents differ
    in their languages, so each distinct list is worked out once per process."""
    found = _PRIMARIES.get(languages)
    if found is None:
        if len(_PRIMARIES) > 10_000:  # a bound, should records ever list odd tags
            _PRIMARIES.clear()
        found = _PRIMARIES[languages] = frozenset(tag.split("-", 1)[0] for tag in languages)
    return found


def _explain(config: RoutingConfig, ask: _Ask, agent: Agent) -> list[dict[str, Any]]:
    """The reasons behind `_rank`'s points for one agent, one per factor that applied."""
    w = config.weights
    why: list[dict[str, Any]] = []
    skill = ask.skill
    if skill is not None:
        level = agent.skills.get(skill, 0)
        why.append(_reason("skill", w.skill, w.skill * level,
                           f"{skill} level {level} of 5" if level else f"no {skill} skill"))
    if not ask.known:
        return why
    serves = ask.queue in agent.queues
    why.append(_reason("queue", w.queue, w.queue if serves else 0.0,
                       f"serves queue {ask.queue}" if serves
                       else f"does not serve queue {ask.queue}"))
    if ask.language is not None:
        speaks = ask.language in _primaries(agent.languages)
        spoken = ", ".join(agent.languages) or "none listed"
        why.append(_reason("language", w.language_match if speaks else w.language_mismatch,
                           w.language_match if speaks else -w.language_mismatch,
                           f"speaks {ask.language}" if speaks
                           else f"does not speak {ask.language} (speaks {spoken})"))
    if ask.tier is not None:
        short = ask.tier_rank - _TIER_RANK.get(agent.tier, _STANDARD)
        why.append(_reason("tier", w.tier_met if short <= 0 else w.tier_short,
                           w.tier_met if short <= 0 else -w.tier_short * short,
                           f"{agent.tier}, as the hint asks for {ask.tier}" if short <= 0
                           else f"{agent.tier}, below the {ask.tier} tier asked for"))
    rated = ask.rated.get(agent.agent_id)
    if rated is not None and rated.n:
        cap = w.customer_rated_cap
        why.append(_reason("customer_rated", w.customer_rated,
                           max(-cap, min(cap, w.customer_rated * (rated.t2 - rated.b2))),
                           f"this customer rated them top-2-box {_times(rated.t2)} and "
                           f"bottom-2-box {_times(rated.b2)} in {rated.n} "
                           f"survey{'s' if rated.n != 1 else ''}"))
    if skill is not None:
        history = ask.outcomes.get(agent.agent_id)
        if history is None or not history.n:
            why.append(_reason("intent_outcomes", w.intent_outcomes, 0.0,
                               f"no surveys on {skill} yet"))
        else:
            shrunk = _shrunk(history.t2, history.n, ask.prior, config.prior_weight)
            why.append(_reason("intent_outcomes", w.intent_outcomes,
                               w.intent_outcomes * (shrunk - ask.prior),
                               f"top-2-box {history.t2} of {history.n} "
                               f"survey{'s' if history.n != 1 else ''} on {skill}: "
                               f"{shrunk:.0%} after shrinking towards {ask.prior:.0%}"))
    return why


def _reason(factor: str, weight: float, points: float, detail: str) -> dict[str, Any]:
    # + 0.0 turns a -0.0 into 0.0, which reads better in JSON.
    return {"factor": factor, "weight": weight, "points": round(points, 2) + 0.0,
            "detail": detail}


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"
