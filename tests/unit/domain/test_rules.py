"""Alert categories from the rules file (domain.rules); no Kafka or Redis needed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cxt.traffic import TrafficGenerator, make_customers
from domain.rules import (
    CATEGORIES,
    DEFAULT_RULES_PATH,
    Classification,
    Rules,
    RulesError,
    load_rules,
)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(DEFAULT_RULES_PATH)


def survey(comment: str = "", codes: list[str] | None = None, **extra: object) -> dict:
    return {"score": 1, "scale_min": 1, "scale_max": 5, "comment": comment,
            "reason_codes": codes or [], **extra}


# --- the default file --------------------------------------------------------

def test_default_file_loads(rules: Rules) -> None:
    assert DEFAULT_RULES_PATH.name == "alert_rules.toml"
    assert DEFAULT_RULES_PATH.parent.name == "config"
    assert rules.source == str(DEFAULT_RULES_PATH)
    assert {"adv-ana", "adv-ben", "adv-chen", "adv-dara", "supervisor-01"} <= rules.actors
    assert {rule.category for rule in rules.rules} <= set(CATEGORIES)
    names = [rule.name for rule in rules.rules]
    assert len(names) == len(set(names))
    # The switched-off example rule is not loaded.
    assert "unresolved-contact" not in names


@pytest.mark.parametrize(("comment", "codes", "category"), [
    ("The agent was RUDE to me", [], "skill"),
    ("she didn't listen to a word I said", [], "skill"),
    ("he didn\u2019t listen", [], "skill"),  # curly apostrophe from a phone keyboard
    ("I had to  repeat\nmyself", [], "skill"),  # odd whitespace
    ("the agent had no idea what to do", [], "skill"),
    ("hung up on me!", [], "skill"),
    ("far too expensive for what it is", [], "business_operations"),
    ("I was charged twice", [], "business_operations"),
    ("my parcel never arrived", [], "business_operations"),
    ("delivery was late again", [], "business_operations"),
    ("no signal for a week, outage they said", [], "business_operations"),
    ("the new refund policy is a joke", [], "business_operations"),
    ("waited 55 minutes to get through", [], "business_operations"),
    ("I didn't know about the exit fee", [], "business_operations"),
    ("no idea why my bill went up", [], "business_operations"),
    ("the chocolate was nice", [], "unclassified"),  # "late" is not a whole word here
    ("not great", [], "unclassified"),
    ("", [], "unclassified"),
    ("", ["price"], "business_operations"),
    ("", ["agent_attitude"], "skill"),
    ("", ["AGENT_KNOWLEDGE"], "skill"),  # codes are compared without case
])
def test_realistic_comments(rules: Rules, comment: str, codes: list[str], category: str) -> None:
    assert rules.classify(survey(comment, codes), None).category == category


@pytest.mark.parametrize(("comment", "codes", "category", "rule"), [
    ("", ["customer_error"], "customer_expectation", "customer-expectation-reason-codes"),
    ("", ["Expected_Free"], "customer_expectation", "customer-expectation-reason-codes"),
    ("i thought it was free with my plan", [], "customer_expectation",
     "customer-expectation-comment"),
    ("Honestly I didn\u2019t read the email properly", [], "customer_expectation",
     "customer-expectation-comment"),
    ("it was my mistake, I forgot to send the form", [], "customer_expectation",
     "customer-expectation-comment"),
    # The skill and business rules come first: any mention of what we did wins.
    ("", ["customer_error", "agent_attitude"], "skill", "skill-reason-codes"),
    ("", ["expected_free", "price"], "business_operations", "business-reason-codes"),
    ("i forgot to pay my bill and the late fee is outrageous", [], "business_operations",
     "business-comment"),
    ("i forgot to mention it but the agent was rude", [], "skill", "skill-comment"),
    ("i thought it was free", ["agent_knowledge"], "skill", "skill-reason-codes"),
    # Phrases that name somebody else's mistake are not the customer's.
    ("it was not my fault", [], "unclassified", None),
    ("the agent didn't read my notes", [], "unclassified", None),
])
def test_customer_expectation(rules: Rules, comment: str, codes: list[str], category: str,
                              rule: str | None) -> None:
    result = rules.classify(survey(comment, codes), None)
    assert (result.category, result.rule) == (category, rule)


def test_customer_expectation_takes_no_case_from_the_other_rules(rules: Rules) -> None:
    """The simulator's comments classify as they did before the category existed."""
    generator = TrafficGenerator(make_customers(100, seed=3), seed=4, bottom2_share=0.5)
    surveys = [env["payload"] for channel, env in generator.take(5_000) if channel == "survey"]
    assert surveys
    for payload in surveys:
        for sample in (payload, payload | {"reason_codes": []}):
            assert rules.classify(sample, None).category != "customer_expectation", sample


def test_reason_codes_beat_comment_phrases(rules: Rules) -> None:
    # The comment talks about the bill, but the explicit code says it was the agent.
    result = rules.classify(survey("the agent was useless about my bill", ["agent_knowledge"]),
                            None)
    assert result == Classification("skill", "skill-reason-codes",
                                    ("reason code agent_knowledge",))
    result = rules.classify(survey("agent was rude", ["price_increase"]), None)
    assert result.category == "business_operations"
    assert result.rule == "business-reason-codes"


def test_skill_phrases_beat_business_phrases(rules: Rules) -> None:
    result = rules.classify(survey("agent was rude about my bill"), None)
    assert result.category == "skill"
    assert result.matched == ("comment contains 'rude'",)


def test_matched_lists_every_reason(rules: Rules) -> None:
    result = rules.classify(survey("Delivery was LATE and the courier lost it"), None)
    assert result.rule == "business-comment"
    assert result.matched == ("comment contains 'delivery'", "comment contains 'late'",
                              "comment contains 'courier'")


def test_transfers_on_the_rated_contact(rules: Rules) -> None:
    contact = {"queue": "tech-uk", "transfers": 3, "outcome": "resolved"}
    result = rules.classify(survey("not happy"), contact)
    assert result.category == "skill"
    assert result.rule == "many-transfers"
    assert result.matched == ("contact had 3 transfers (>= 2)",)
    assert rules.classify(survey("not happy"), contact | {"transfers": 1}).category \
        == "unclassified"
    # The customer's own words come before the transfer count.
    assert rules.classify(survey("too expensive"), contact).category == "business_operations"
    # No rated contact known, or a broken count: nothing to go on.
    assert rules.classify(survey("not happy"), None).category == "unclassified"
    assert rules.classify(survey("meh"), {"transfers": True}).category == "unclassified"


def test_queue_alone_is_not_a_category(rules: Rules) -> None:
    assert rules.classify(survey("meh", queue="retention-uk"), None).category == "unclassified"
    result = rules.classify(survey("they would not let me cancel", queue="retention-uk"), None)
    assert result.rule == "retention-policy"
    assert result.matched == ("queue retention-uk", "comment contains 'cancel*'")
    # The rated contact's queue counts too.
    result = rules.classify(survey("cancelling was impossible"), {"queue": "retention-chat"})
    assert result.rule == "retention-policy"


def test_malformed_payload_fields_do_not_crash(rules: Rules) -> None:
    odd = {"score": 1, "comment": None, "reason_codes": "price", "queue": 7}
    assert rules.classify(odd, {"transfers": "2"}).category == "unclassified"
    assert rules.classify({}, None) == Classification("unclassified", None, ())


def test_simulator_bottom_2_box_comments_classify(rules: Rules) -> None:
    generator = TrafficGenerator(make_customers(200, seed=5), seed=9, bottom2_share=0.5)
    surveys = [env["payload"] for channel, env in generator.take(20_000)
               if channel == "survey" and env["payload"]["score"] <= 2]
    assert len(surveys) > 200
    results = [rules.classify(p, None) for p in surveys]
    classified = [r for r in results if r.category != "unclassified"]
    assert len(classified) / len(results) > 0.95
    # And by the comment alone too, as when the survey tool sends no reason codes.
    by_words = [rules.classify(p | {"reason_codes": []}, None) for p in surveys]
    assert sum(r.category != "unclassified" for r in by_words) / len(by_words) > 0.95
    # The simulator draws half its comments from each cause; both must show up.
    assert {r.category for r in classified} == {"skill", "business_operations"}


def test_the_phrase_prefilter_never_changes_the_reasons(rules: Rules) -> None:
    """Each phrase is searched for only in comments holding its longest literal part
    (`Rule.phrase_needles`); the reasons are those of searching for every phrase."""
    import dataclasses

    from cxt.traffic import NEGATIVE_LINES

    unfiltered = dataclasses.replace(rules, rules=tuple(
        dataclasses.replace(r, phrase_needles=("",) * len(r.comment_phrases))
        for r in rules.rules))
    phrases = [p for r in rules.rules for p in r.comment_phrases]
    assert any("*" in p for p in phrases)  # the wildcard case is among them
    rng = random.Random(4)
    comments = [*NEGATIVE_LINES, *(p.replace("*", rng.choice(["", "s", "ing"]))
                                   for p in phrases)]
    comments += [" ".join(rng.sample(comments, 3)) for _ in range(500)]
    for comment in comments:
        for codes in ([], ["price"]):
            assert (rules.classify(survey(comment, codes), None)
                    == unfiltered.classify(survey(comment, codes), None)), comment


def test_classify_is_deterministic_for_random_input(rules: Rules) -> None:
    rng = random.Random(1)
    words = ["late", "bill", "rude", "chocolate", "fine", "agent", "x"]
    for _ in range(200):
        comment = " ".join(rng.choice(words) for _ in range(5))
        first = rules.classify(survey(comment), None)
        assert first == rules.classify(survey(comment), None)
        assert first.category in CATEGORIES


# --- errors --------------------------------------------------------------------

GOOD_RULE = '''
[[rule]]
name = "pricing"
category = "business_operations"
reason_codes = ["price"]
'''


def write(tmp_path: Path, text: str, actors: str = 'actors = ["adv-ana"]\n') -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(actors + text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":"), message
    return message


def test_small_valid_file(tmp_path: Path) -> None:
    loaded = load_rules(write(tmp_path, GOOD_RULE))
    assert loaded.actors == frozenset({"adv-ana"})
    assert loaded.rules[0].reason_codes == frozenset({"price"})
    assert loaded.classify(survey("", ["price"]), None).rule == "pricing"


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in error_of(tmp_path / "nope.toml")


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    # A forgotten closing quote, the commonest slip when editing by hand.
    message = error_of(write(tmp_path, GOOD_RULE.replace('"pricing"', '"pricing')))
    assert "not valid TOML" in message
    assert "line 4" in message  # actors, blank, [[rule]], name


@pytest.mark.parametrize(("extra", "expected"), [
    ('reason_code = ["price"]\n',
     "rule 2 'broken': unknown key 'reason_code'"),
    ('min_transfers = -1\n',
     "rule 2 'broken': min_transfers must be a whole number >= 0"),
    ('min_transfers = "2"\n',
     "rule 2 'broken': min_transfers must be a whole number >= 0"),
    ('min_transfers = true\n',
     "rule 2 'broken': min_transfers must be a whole number >= 0"),
    ('reason_codes = "price"\n',
     "rule 2 'broken': reason_codes must be a list"),
    ('reason_codes = []\n',
     "rule 2 'broken': reason_codes must be a list of at least one text"),
    ('queues = ["retention-uk", 3]\n',
     "rule 2 'broken': queues must contain only non-empty texts"),
    ('comment_phrases = ["  "]\n',
     "rule 2 'broken': comment_phrases must contain only non-empty texts"),
    ('comment_phrases = ["*"]\n',
     "rule 2 'broken': comment_phrases must contain letters or digits"),
    ('outcomes = ["unresolved"]\nenabled = "no"\n',
     "rule 2 'broken': enabled must be true or false"),
    ('', "rule 2 'broken': has no condition"),
])
def test_rule_errors_name_rule_and_field(tmp_path: Path, extra: str, expected: str) -> None:
    text = GOOD_RULE + '\n[[rule]]\nname = "broken"\ncategory = "skill"\n' + extra
    assert expected in error_of(write(tmp_path, text))


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "x"\ncategory = "skill"\ncomment_phrase = ["rude"]\n'
    assert "did you mean 'comment_phrases'?" in error_of(write(tmp_path, text))


def test_unknown_category(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "ops"\ncategory = "operations"\nqueues = ["a"]\n'
    message = error_of(write(tmp_path, text))
    assert ("rule 1 'ops': category must be one of skill, business_operations, "
            "customer_expectation, unclassified") in message


def test_rule_without_name(tmp_path: Path) -> None:
    text = '[[rule]]\ncategory = "skill"\nqueues = ["a"]\n'
    assert "rule 1: name is required" in error_of(write(tmp_path, text))


def test_duplicate_rule_name(tmp_path: Path) -> None:
    assert "rule 2 'pricing': name is used by an earlier rule" \
        in error_of(write(tmp_path, GOOD_RULE + GOOD_RULE))


def test_disabled_rule_is_still_checked(tmp_path: Path) -> None:
    text = '[[rule]]\nname = "off"\ncategory = "skill"\nenabled = false\nmin_transfers = -2\n'
    assert "rule 1 'off': min_transfers" in error_of(write(tmp_path, text))


@pytest.mark.parametrize(("actors", "expected"), [
    ("", "actors must be a list of at least one text"),
    ("actors = []\n", "actors must be a list of at least one text"),
    ('actors = "adv-ana"\n', "actors must be a list"),
    ('actors = ["adv-ana", ""]\n', "actors must contain only non-empty texts"),
])
def test_actor_errors(tmp_path: Path, actors: str, expected: str) -> None:
    assert expected in error_of(write(tmp_path, GOOD_RULE, actors=actors))


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = '[[rules]]\nname = "x"\ncategory = "skill"\nqueues = ["a"]\n'
    message = error_of(write(tmp_path, text))
    assert "top level: unknown key 'rules'" in message
    assert "did you mean 'rule'?" in message


def test_describe_lists_rules_in_order(rules: Rules) -> None:
    text = rules.describe()
    assert text.index("skill-reason-codes") < text.index("many-transfers")
    assert "min_transfers: 2" in text


def test_categories_are_the_contracts() -> None:
    from schemas.registry import load_schema

    assert CATEGORIES == ("skill", "business_operations", "customer_expectation", "unclassified")
    for name in ("alert.v1", "alert-action.v1"):
        assert tuple(load_schema(name)["properties"]["category"]["enum"]) == CATEGORIES
