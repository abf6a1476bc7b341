"""Does the routing hint help? (cxt.routing_trial, `cxt report routing`): offline, no Kafka
or Redis.  The hint's arm must beat random assignment on a fixed seed, and the same
comparison must come out even when the hint knows nothing to rank by, so the first
assertion is one that can fail."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from cxt.routing_trial import TrialResult, offered_contacts, run_trial
from cxt.traffic import make_customers
from domain.routing import RoutingConfig, Weights
from tests.support.helpers import REPO

CONTACTS = 4000


@pytest.fixture(scope="module")
def trial() -> TrialResult:
    return run_trial(RoutingConfig(), seed=7, contacts=CONTACTS)


def test_the_hints_top_agent_gives_fewer_bottom_2_box_surveys(trial: TrialResult) -> None:
    assert trial.random.surveys == trial.hint.surveys > 800  # the same contacts and draws
    assert 0.09 < trial.random.bottom2_share < 0.15  # about the demo traffic's 12%
    assert trial.hint.bottom2_share < trial.random.bottom2_share - 0.03, trial.to_json()
    assert trial.difference < -3


def test_a_hint_with_nothing_to_rank_by_does_no_better_than_random(trial: TrialResult) -> None:
    blind = replace(RoutingConfig(), weights=Weights(**dict.fromkeys(
        Weights.__dataclass_fields__, 0.0)))
    even = run_trial(blind, seed=7, contacts=CONTACTS)
    assert even.random == trial.random  # the random arm does not depend on the rules
    assert abs(even.difference) < 1.5, even.to_json()


def test_the_contacts_are_the_same_for_the_same_seed() -> None:
    customers = make_customers(50, 3)
    first = offered_contacts(3, 200, customers, 100)
    assert first == offered_contacts(3, 200, customers, 100)
    assert first != offered_contacts(4, 200, customers, 100)
    assert [c.at for c in first] == sorted(c.at for c in first)
    assert {c.channel for c in first} == {"call", "chat"}
    assert any(c.customer is None for c in offered_contacts(3, 2000, customers, 100))


def _cxt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxt", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cxt_report_routing_prints_both_shares_and_the_seed() -> None:
    result = _cxt("report", "routing", "--seed", "5", "--contacts", "1500", "--json")
    assert result.returncode == 0, result.stderr
    figures = orjson.loads(result.stdout)
    assert (figures["seed"], figures["contacts"]) == (5, 1500)
    assert figures["hint"]["bottom2_share"] < figures["random"]["bottom2_share"]
    assert figures["rules"].endswith("config/routing.toml")
    text = _cxt("report", "routing", "--contacts", "1000").stdout
    assert "seed 7" in text and "random free agent" in text and "percentage points" in text


def test_cxt_report_routing_refuses_a_bad_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "routing.toml"
    rules.write_text("[weights]\nskill = -1\n", encoding="utf-8")
    result = _cxt("report", "routing", "--contacts", "10", "--rules", str(rules))
    assert result.returncode == 2
    assert f"{rules}: [weights]: skill must be a number" in result.stderr
    assert "Traceback" not in result.stderr
    assert "more than 1000000" in _cxt("report", "routing", "--contacts", "1000001").stderr
