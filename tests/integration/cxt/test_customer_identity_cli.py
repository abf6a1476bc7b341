"""`cxt customers show` and `cxt customers merge-preview` on identity state stored
straight into the real Redis (shared identifiers, a merge, linked and ambiguous profiles;
tests.support.identity_data), run in-process (`main`) so each call costs milliseconds."""

from __future__ import annotations

import orjson
import pytest

from cxt.localstack import LocalStack
from kernel.settings import Settings
from tests.support.cli_fuzz import Outcome, run_main
from tests.support.helpers import isolated, settings_env
from tests.support.identity_data import Household, household, store


@pytest.fixture(scope="module")
def settings(stack: LocalStack) -> Settings:
    return isolated(stack.settings)


@pytest.fixture(scope="module")
def house(settings: Settings) -> Household:
    found = household()
    store(settings, found.seed)
    return found


def _cxt(settings: Settings, *argv: str) -> Outcome:
    outcome = run_main(list(argv), settings_env(settings))
    assert "Traceback" not in outcome.stderr and not outcome.logged, outcome
    return outcome


def _json(settings: Settings, *argv: str) -> dict:
    outcome = _cxt(settings, *argv, "--json")
    assert outcome.status == 0, outcome.stderr
    return orjson.loads(outcome.stdout)


def test_show_names_every_claimant_the_merge_and_the_linked_profiles(
        settings: Settings, house: Household) -> None:
    shown = _cxt(settings, "customers", "show", house.a)
    assert shown.status == 0, shown.stderr
    out = shown.stdout
    assert f"phone:{house.phone}  (shared with {house.b}: an interaction carrying only it " \
        "waits for an agent to confirm)" in out
    assert f"email:{house.email_a}  (resolves here)" in out
    assert f"merged into it: {house.m}" in out
    assert f"provisional profiles linked in:\n    {house.provisional}  (1 entries)" in out
    assert f"ambiguous profiles confirmed in:\n    {house.profile}  (1 entries)" in out
    assert f"{house.profile}  (entries waiting for an agent to confirm who called)" in out
    assert "timeline: 5 entries; alerts: 2 (1 not resolved)" in out

    view = _json(settings, "customers", "show", house.a)
    assert view["identifiers"] == [
        {"key": f"phone:{house.phone}", "claimants": [house.a, house.b],
         "shared_with": [house.b], "shared": True, "matching": True, "resolves_to": None},
        {"key": f"email:{house.email_a}", "claimants": [house.a], "shared_with": [],
         "shared": False, "matching": True, "resolves_to": house.a}]
    assert view["merged_into"] is None and view["root"] == house.a
    assert view["merged_parts"] == [house.m]
    assert view["linked_provisional_profiles"] == {house.provisional: 1}
    assert view["linked_ambiguous_profiles"] == {house.profile: 1}
    assert view["unconfirmed_ambiguous_profiles"] == [house.profile]
    assert view["unlinked_provisional_profiles"] == []
    assert view["timeline_entries"] == 5 and len(view["alerts"]) == 2


def test_show_of_a_merged_customer_names_where_it_is(settings: Settings,
                                                     house: Household) -> None:
    shown = _cxt(settings, "customers", "show", house.m)
    assert shown.status == 0, shown
    out = shown.stdout
    assert f"merged into {house.a} (root {house.a})" in out
    view = _json(settings, "customers", "show", house.m)
    assert (view["merged_into"], view["root"], view["timeline_entries"]) == (house.a, house.a, 0)
    assert view["identifiers"][0]["claimants"] == [house.m]
    assert view["identifiers"][0]["resolves_to"] == house.a  # m's identifier lands in a


def test_merge_preview_lists_what_would_move(settings: Settings, house: Household) -> None:
    preview = _json(settings, "customers", "merge-preview", house.a, house.b)
    assert preview["root"] == house.b and preview["currently_merged_into"] is None
    assert preview["entries"] == {"total": 5, "by_channel": {
        "call": 2, "chat": 1, "email": 1, "survey": 1}}
    assert sorted(a["status"] for a in preview["alerts"]) == ["open", "resolved"]
    assert preview["open_alerts"] == 1
    assert preview["parts"] == [house.a, house.m]
    assert preview["identifiers"] == {house.a: [f"phone:{house.phone}", f"email:{house.email_a}"],
                                      house.m: [f"email:{house.email_m}"]}
    text = _cxt(settings, "customers", "merge-preview", house.a, house.b)
    assert text.status == 0
    assert text.stdout.startswith(f"merging {house.a} into {house.b} would move into "
                                  f"{house.b}'s timeline:\n")
    assert "  entries: 5 (2 call, 1 chat, 1 email, 1 survey)\n" in text.stdout
    assert f"    email:{house.email_m}  (of {house.m})\n" in text.stdout


def test_merge_preview_of_a_merged_customer_takes_only_what_is_filed_under_it(
        settings: Settings, house: Household) -> None:
    preview = _json(settings, "customers", "merge-preview", house.m, house.b)
    assert preview["currently_merged_into"] == house.a and preview["root"] == house.b
    assert preview["entries"] == {"total": 1, "by_channel": {"email": 1}}
    assert [a["status"] for a in preview["alerts"]] == ["resolved"]
    # Into a customer that is merged: it lands in that customer's root.
    landing = _json(settings, "customers", "merge-preview", house.b, house.m)
    assert (landing["into"], landing["root"]) == (house.m, house.a)


@pytest.mark.parametrize(("which", "message"), [
    (("a", "a"), "no merge to preview: {a} cannot be merged into itself"),
    (("a", "m"), "no merge to preview: merging {a} into {m} would make a loop: {m} is "
                 "merged into {a}"),
    (("m", "a"), "no merge to preview: {m} is already merged into {a}"),
    (("~phone:+1", "a"), "'~phone:+1' is not a customer id"),
    (("a", "~phone:+1"), "into: '~phone:+1' is not a customer id"),
])
def test_merge_preview_refuses_in_one_line(settings: Settings, house: Household,
                                           which: tuple[str, str], message: str) -> None:
    ids = {"a": house.a, "m": house.m}
    argv = [ids.get(w, w) for w in which]
    outcome = _cxt(settings, "customers", "merge-preview", *argv)
    assert outcome.status == 2, outcome
    line = outcome.stderr.strip()
    assert "\n" not in line and message.format(**ids) in line, line
