"""domain.identity: the resolution rule, merges' roots and cycles, never-match patterns."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.identity import (
    NeverMatch,
    choose_owner,
    is_ambiguous,
    merge_cycle,
    parse_claimants,
    root_of,
)

NONE = NeverMatch()


def test_a_named_customer_goes_to_its_root() -> None:
    owner = choose_owner("C-1", [], [], {"C-1": "C-2", "C-2": "C-3"}, NONE)
    assert (owner.root, owner.filed_under) == ("C-3", "C-1")


def test_the_first_identifier_with_one_candidate_decides() -> None:
    owner = choose_owner(None, ["phone:+1", "email:a@b"], [("C-1", "C-2"), ("C-2",)], {}, NONE)
    assert (owner.root, owner.filed_under) == ("C-2", "C-2")


def test_shared_identifiers_resolve_by_their_common_candidate_or_stay_ambiguous() -> None:
    common = choose_owner(None, ["phone:+1", "email:a@b"],
                          [("C-1", "C-2"), ("C-2", "C-3")], {}, NONE)
    assert common.root == "C-2"
    owner = choose_owner(None, ["phone:+1"], [("C-2", "C-1")], {}, NONE)
    assert is_ambiguous(owner.root) and owner.root == "~?phone:+1"
    assert owner.candidates == ("C-1", "C-2")


def test_claimants_sharing_a_root_are_one_customer_filed_under_the_roots_own_claim() -> None:
    owner = choose_owner(None, ["phone:+1"], [("C-1", "C-2")], {"C-1": "C-2"}, NONE)
    assert (owner.root, owner.filed_under, owner.candidates) == ("C-2", "C-2", ())


def test_never_match_identifiers_are_skipped_and_unknown_ones_are_provisional() -> None:
    never = NeverMatch(("phone:+4420700*", "email:noreply@*"))
    owner = choose_owner(None, ["phone:+442070000000", "email:x@y"],
                         [("C-1",), ()], {}, never)
    assert owner.root == "~email:x@y"
    assert not never.usable("email:noreply@example.com") and never.usable("email:a@b")


def test_a_merge_back_into_a_descendant_is_a_cycle() -> None:
    merges = {"C-1": "C-2", "C-2": "C-3"}
    assert merge_cycle("C-3", "C-1", merges)
    assert not merge_cycle("C-4", "C-1", merges)
    assert merge_cycle("C-1", "C-1", {})


@given(st.dictionaries(st.sampled_from("abcdef"), st.sampled_from("abcdef"), max_size=6),
       st.sampled_from("abcdef"))
def test_root_of_always_ends_even_on_a_loop(merges: dict[str, str], start: str) -> None:
    root = root_of(start, merges)
    assert root in merges.values() or root == start


@given(st.lists(st.text(alphabet="C-0123456789", min_size=1), max_size=5, unique=True))
def test_claimants_round_trip(claimants: list[str]) -> None:
    assert parse_claimants("\n".join(claimants)) == tuple(claimants)
