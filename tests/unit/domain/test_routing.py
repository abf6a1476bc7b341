"""The routing hint's ranking and reasons (domain.routing) and its file; pure, no Kafka or
Redis.  The hint must validate against schemas/routing-hint.v1.json once the topic's
fields are added, and every agent's score must be the sum of its reasons' points."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from domain.routing import (
    DEFAULT_ROUTING_PATH,
    TIERS,
    UNKNOWN_CALLER,
    Agent,
    Caller,
    Outcome,
    RoutingConfig,
    RoutingConfigError,
    Weights,
    agent_from_record,
    caller_from,
    load_routing_config,
    recommend,
)
from kernel.errors import ConfigError
from schemas.registry import load_schema, validator
from tests.support.helpers import REPO

CONFIG = RoutingConfig()


def agent(agent_id: str, *, skills: dict[str, int] | None = None,
          languages: tuple[str, ...] = ("en",), tier: str = "standard",
          queues: tuple[str, ...] = ("billing",), available: bool = True) -> Agent:
    return Agent(agent_id, f"Agent {agent_id}", skills if skills is not None else {"billing": 3},
                 languages, tier, queues, available)


def caller(customer_id: str | None = "C-1", *, segment: str | None = "consumer",
           vip: bool = False, language: str | None = None, open_alerts: int = 0,
           negative: bool = False, rated: dict[str, Outcome] | None = None) -> Caller:
    return Caller(customer_id, segment, vip, language, open_alerts, negative, rated or {})


def hint(who: Caller, agents: list[Agent], *, intent: str | None = "billing",
         outcomes: dict[str, Outcome] | None = None, config: RoutingConfig = CONFIG,
         limit: int = 5) -> dict[str, Any]:
    return recommend(config, who, intent=intent, channel="call", agents=agents,
                     outcomes=outcomes or {}, limit=limit)


def ids(result: dict[str, Any]) -> list[str]:
    return [a["agent_id"] for a in result["agents"]]


def reason(result: dict[str, Any], agent_id: str, factor: str) -> dict[str, Any]:
    listed = next(a for a in result["agents"] if a["agent_id"] == agent_id)
    return next(r for r in listed["reasons"] if r["factor"] == factor)


# --- the shipped file ---------------------------------------------------------------

def test_the_shipped_file_is_the_defaults() -> None:
    assert DEFAULT_ROUTING_PATH == REPO / "config" / "routing.toml"
    loaded = load_routing_config(DEFAULT_ROUTING_PATH)
    assert replace(loaded, source=CONFIG.source) == CONFIG
    assert loaded.queue_for("billing") == "billing"
    assert loaded.queue_for("cancellation") == "retention"
    assert loaded.queue_for("fraud") == loaded.queue_for(None) == "general"


def test_every_weight_is_explained_in_the_shipped_file() -> None:
    text = DEFAULT_ROUTING_PATH.read_text(encoding="utf-8")
    for name in Weights.__dataclass_fields__:
        line = f"\n{name} = "
        assert line in text, name
        before = text[:text.index(line)].rstrip().splitlines()[-1]
        assert before.startswith("#"), f"{name} has no comment above it"


# --- the ranking --------------------------------------------------------------------

def test_skill_level_for_the_intent_ranks_agents() -> None:
    agents = [agent("A-1", skills={"billing": 2}), agent("A-2", skills={"billing": 5}),
              agent("A-3", skills={"technical": 5})]
    result = hint(caller(), agents)
    assert ids(result) == ["A-2", "A-1", "A-3"]
    assert reason(result, "A-2", "skill") == {"factor": "skill", "weight": 10.0,
                                              "points": 50.0,
                                              "detail": "billing level 5 of 5"}
    assert reason(result, "A-3", "skill")["points"] == 0
    assert reason(result, "A-3", "skill")["detail"] == "no billing skill"
    assert (result["queue"], result["skill"], result["default"]) == ("billing", "billing", False)


def test_language_beats_skill_when_configured() -> None:
    agents = [agent("A-1", skills={"billing": 5}, languages=("en",)),
              agent("A-2", skills={"billing": 1}, languages=("en", "pl"))]
    polish = caller(language="pl")
    result = hint(polish, agents)
    assert ids(result) == ["A-2", "A-1"]
    assert result["language"] == "pl"
    assert reason(result, "A-2", "language")["points"] == 40
    assert reason(result, "A-1", "language") == {
        "factor": "language", "weight": 40.0, "points": -40.0,
        "detail": "does not speak pl (speaks en)"}
    # Weighted lightly, the language no longer outweighs four skill levels.
    light = replace(CONFIG, weights=replace(CONFIG.weights, language_match=5.0,
                                            language_mismatch=5.0))
    assert ids(hint(polish, agents, config=light)) == ["A-1", "A-2"]


def test_a_regional_language_tag_matches_the_agents_primary_language() -> None:
    agents = [agent("A-1", languages=("fr",)), agent("A-2", languages=("en",))]
    assert ids(hint(caller(language="en-gb"), agents))[0] == "A-2"


def test_a_bottom_2_box_rating_ranks_the_agent_down_and_a_top_2_box_one_up() -> None:
    agents = [agent("A-1"), agent("A-2"), agent("A-3")]
    result = hint(caller(rated={"A-1": Outcome(n=1, t2=0, b2=1),
                                "A-3": Outcome(n=1, t2=1, b2=0)}), agents)
    assert ids(result) == ["A-3", "A-2", "A-1"]
    assert reason(result, "A-1", "customer_rated")["points"] == -15
    assert "bottom-2-box once" in reason(result, "A-1", "customer_rated")["detail"]
    assert reason(result, "A-3", "customer_rated")["points"] == 15


def test_the_customers_ratings_are_capped() -> None:
    agents = [agent("A-1", skills={"billing": 5}), agent("A-2", skills={"billing": 1})]
    result = hint(caller(rated={"A-1": Outcome(n=10, t2=0, b2=10)}), agents)
    assert reason(result, "A-1", "customer_rated")["points"] == -45
    assert ids(result) == ["A-2", "A-1"]  # 50 - 45 < 10: still ranked down


def test_vip_asks_for_a_senior_agent_and_the_priority_queue() -> None:
    agents = [agent("A-1", tier="junior", skills={"billing": 4}),
              agent("A-2", tier="senior", skills={"billing": 3}, queues=("billing", "priority")),
              agent("A-3", tier="standard", skills={"billing": 4})]
    result = hint(caller(segment="vip", vip=True), agents)
    assert (result["tier"], result["queue"]) == ("senior", "priority")
    assert ids(result) == ["A-2", "A-3", "A-1"]
    assert reason(result, "A-2", "tier")["points"] == 20
    assert reason(result, "A-1", "tier")["points"] == -40  # two tiers below
    assert reason(result, "A-3", "tier")["points"] == -20
    assert {"vip"} <= {r["factor"] for r in result["reasons"]}


def test_open_alerts_or_a_negative_signal_ask_for_a_senior_tier() -> None:
    agents = [agent("A-1", tier="junior"), agent("A-2", tier="senior")]
    for who, factor in ((caller(open_alerts=2), "open_alerts"),
                        (caller(negative=True), "negative")):
        result = hint(who, agents)
        assert result["tier"] == "senior" and ids(result) == ["A-2", "A-1"]
        assert any(r["factor"] == factor for r in result["reasons"])
    assert hint(caller(), agents)["tier"] is None


def test_a_segment_with_its_own_queue_changes_the_recommended_queue() -> None:
    agents = [agent("A-1", queues=("billing",)), agent("A-2", queues=("business",))]
    result = hint(caller(segment="business"), agents)
    assert result["queue"] == "business"
    assert ids(result) == ["A-2", "A-1"]
    assert reason(result, "A-2", "queue")["points"] == 15
    assert {"factor": "segment", "detail": "segment business: queue business"} in \
        result["reasons"]


def test_intent_outcomes_are_shrunk_so_one_survey_does_not_dominate() -> None:
    # The rest of the floor: 120 surveys at 60% top-2-box, so the intent's pooled share
    # (the prior) is 70%.
    floor = {f"A-{n}": Outcome(n=20, t2=12, b2=3) for n in range(4, 10)}
    agents = [agent(agent_id) for agent_id in ("A-1", "A-2", "A-3", *floor)]
    outcomes = {"A-1": Outcome(n=1, t2=1), "A-2": Outcome(n=60, t2=54, b2=2), **floor}
    result = hint(caller(), agents, outcomes=outcomes, limit=9)
    assert ids(result)[:3] == ["A-2", "A-1", "A-3"]
    one = reason(result, "A-1", "intent_outcomes")
    many = reason(result, "A-2", "intent_outcomes")
    assert 0 < one["points"] < 3 < many["points"]
    assert "1 of 1 survey on billing" in one["detail"] and "54 of 60" in many["detail"]
    assert "towards 70%" in one["detail"]
    assert reason(result, "A-4", "intent_outcomes")["points"] < 0
    assert reason(result, "A-3", "intent_outcomes") == {
        "factor": "intent_outcomes", "weight": 100.0, "points": 0.0,
        "detail": "no surveys on billing yet"}


def test_unknown_caller_gets_the_default_answer_ranked_by_skill_only() -> None:
    agents = [agent("A-1", skills={"billing": 2}, tier="senior"),
              agent("A-2", skills={"billing": 4}, tier="junior", queues=())]
    result = hint(UNKNOWN_CALLER, agents, outcomes={"A-1": Outcome(n=99, t2=99)})
    assert result["default"] is True and result["known"] is False
    assert result["customer_id"] is None and result["queue"] == "billing"
    assert ids(result) == ["A-2", "A-1"]
    assert all([r["factor"] for r in a["reasons"]] == ["skill"] for a in result["agents"])
    assert result["reasons"][-1]["factor"] == "unknown_caller"
    # No intent either: the default queue, still a clear answer.
    bare = hint(UNKNOWN_CALLER, agents, intent=None)
    assert (bare["queue"], bare["skill"], bare["default"]) == ("general", None, True)
    assert ids(bare) == ["A-1", "A-2"]


def test_unavailable_agents_are_never_listed() -> None:
    agents = [agent("A-1", skills={"billing": 5}, available=False), agent("A-2")]
    assert ids(hint(caller(), agents)) == ["A-2"]
    none = hint(caller(), [agent("A-1", available=False)])
    assert none["agents"] == [] and none["reasons"][-1]["factor"] == "no_agents"


def test_ties_go_to_the_lower_agent_id_whatever_the_order() -> None:
    agents = [agent(f"A-{n:03d}") for n in (7, 3, 12, 1, 5)]
    first = ids(hint(caller(), agents))
    assert first == ["A-001", "A-003", "A-005", "A-007", "A-012"]
    assert ids(hint(caller(), list(reversed(agents)))) == first
    assert ids(hint(caller(), agents, limit=2)) == first[:2]


def test_scores_are_the_sum_of_their_points_and_the_hint_matches_the_schema() -> None:
    rng = random.Random(4)
    intents = ("billing", "technical", "sales", "fraud")
    agents = [agent_from_record({
        "agent_id": f"A-{n:03d}", "name": None,
        "skills": {i: rng.randint(1, 5) for i in rng.sample(intents, 2)},
        "languages": rng.choice((["en"], ["en", "pl"], ["cy", "en"])),
        "tier": rng.choice(TIERS), "queues": rng.sample(["billing", "priority", "business"], 2),
        "available": rng.random() < 0.8}) for n in range(1, 121)]
    check = validator("routing-hint.v1")
    for _ in range(200):
        outcomes = {a.agent_id: Outcome(n, rng.randint(0, n), 0)
                    for a in agents if (n := rng.randint(0, 30))}
        who = rng.choice((UNKNOWN_CALLER, caller(
            segment=rng.choice((None, "vip", "business")), vip=rng.random() < 0.2,
            language=rng.choice((None, "pl", "en")), open_alerts=rng.randint(0, 2),
            negative=rng.random() < 0.2,
            rated={a.agent_id: Outcome(2, rng.randint(0, 1), 1) for a in agents[:9]})))
        result = hint(who, agents, intent=rng.choice((None, *intents)), outcomes=outcomes)
        for listed in result["agents"]:
            assert listed["score"] == pytest.approx(sum(r["points"] for r in listed["reasons"]),
                                                    abs=0.02)
        scores = [a["score"] for a in result["agents"]]
        assert scores == sorted(scores, reverse=True)
        check({"hint_id": "H-1", "event_id": "e-1", "type": "call.offered",
               "generated_at": "2026-01-02T03:04:05.000Z", **result})


def test_the_schema_refuses_a_hint_without_its_topic_fields() -> None:
    result = hint(caller(), [agent("A-1")])
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validator("routing-hint.v1")(result)
    assert set(load_schema("routing-hint.v1")["required"]) == \
        {*result, "hint_id", "event_id", "type", "generated_at"}


# --- records and callers ---------------------------------------------------------

def test_agent_from_record_reads_the_record_defensively() -> None:
    record = {"agent_id": "A-007", "name": "Priya Shah", "skills": {"billing": 4, "sales": 9,
                                                                     "odd": "x", "none": 0},
              "languages": ["EN", "pl"], "tier": "principal", "queues": ["billing", 3]}
    a = agent_from_record(record)
    assert a == Agent("A-007", "Priya Shah", {"billing": 4, "sales": 5}, ("en", "pl"),
                      "standard", ("billing",), True)
    assert agent_from_record({**record, "available": False}).available is False
    validator("agent.v1")({"agent_id": "A-007", "name": "Priya Shah", "skills": {"billing": 4},
                           "languages": ["en", "pl"], "tier": "senior", "queues": ["billing"],
                           "available": True, "updated_at": "2026-01-02T03:04:05Z"})


def test_caller_from_prefers_the_customers_own_language() -> None:
    profile = {"segment": "business", "language": "cy", "vip": True}
    who = caller_from("C-1", profile, {"language": "PL"}, 2, True, {})
    assert (who.language, who.segment, who.vip, who.open_alerts, who.negative) == \
        ("pl", "business", True, 2, True)
    assert caller_from("C-1", profile, None, 0, False, {}).language == "cy"
    assert caller_from("C-1", profile, {"language": None}, 0, False, {}).language == "cy"
    assert caller_from("C-1", {"segment": "vip"}, None, 0, False, {}).vip is True
    plain = caller_from("C-1", None, None, 0, False, {})
    assert (plain.language, plain.segment, plain.vip) == (None, None, False)


# --- config errors ------------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "words"), [
    ("[weigths]\nskill = 1\n", "top level: unknown key 'weigths'"),
    ("[weights]\nskil = 1\n", "[weights]: unknown key 'skil'"),
    ("[weights]\nskill = \"ten\"\n", "[weights]: skill must be a number from 0 to 1000"),
    ("[weights]\nskill = true\n", "skill must be a number"),
    ("[weights]\nqueue = -5\n", "queue must be a number from 0 to 1000"),
    ("[tier]\nvip = \"gold\"\n", "[tier]: vip must be one of"),
    ("[tier]\nvip = [1]\n", "[tier]: vip must be one of"),
    ("[queues]\ndefault = \"\"\n", "[queues]: default must be a queue name"),
    ("[queues.by_intent]\nbilling = 3\n", "[queues.by_intent]: billing must be a queue name"),
    ("[escalation]\nvip_queue = 1\n", "[escalation]: vip_queue must be"),
    ("[history]\nprior_top2_share = 1.5\n", "[history]: prior_top2_share must be a number"),
    ("weights = 3\n", "weights must be a section"),
    ("[weights\n", "not valid TOML"),
])
def test_config_errors_name_the_file_and_key(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RoutingConfigError) as caught:
        load_routing_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message, message
    assert isinstance(caught.value, ConfigError) and caught.value.exit_status == 2


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError, match="cannot read the routing file"):
        load_routing_config(tmp_path / "nope.toml")


def test_keys_left_out_take_their_defaults_and_none_switches_a_tier_off(
        tmp_path: Path) -> None:
    config = load_routing_config(write(tmp_path, '[tier]\nvip = "none"\n[escalation]\n'
                                                 'vip_queue = ""\n'))
    assert config.tier_vip is None and config.vip_queue is None
    assert config.weights == Weights() and config.tier_negative == "senior"
    result = hint(caller(segment="vip", vip=True), [agent("A-1", tier="junior")], config=config)
    assert (result["tier"], result["queue"]) == (None, "billing")
