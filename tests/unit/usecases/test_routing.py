"""usecases.routing's pure parts: how a caller may be named, and which months count."""

from __future__ import annotations

import pytest

from usecases.routing import BadRoutingInput, Lookup, check_intent, lookup_from, months_back


@pytest.mark.parametrize(("given", "expected"), [
    ({"phone": "+442071234567"}, Lookup("phone", "+442071234567")),
    ({"phone": " 442071234567"}, Lookup("phone", "+442071234567")),  # a + sent unescaped
    ({"phone": "+44 20 7123 4567"}, Lookup("phone", "+44 20 7123 4567")),
    ({"email": "Ada@Example.org"}, Lookup("email", "Ada@Example.org")),
    ({"customer_id": "C-000001"}, Lookup("customer_id", "C-000001")),
])
def test_one_lookup_is_taken_as_given(given: dict, expected: Lookup) -> None:
    assert lookup_from(**given) == expected


@pytest.mark.parametrize(("given", "field"), [
    ({}, "phone, email or customer_id"),
    ({"phone": "+442071234567", "email": "a@b.c"}, "phone, email"),
    ({"phone": "02071234567"}, "phone"),
    ({"phone": "+0123456789"}, "phone"),
    ({"email": "nobody"}, "email"),
    ({"email": "a@" + "b" * 260}, "email"),
    ({"customer_id": "~phone:+44"}, "customer_id"),
    ({"customer_id": "}x"}, "customer_id"),
])
def test_a_wrong_lookup_names_its_field(given: dict, field: str) -> None:
    with pytest.raises(BadRoutingInput) as raised:
        lookup_from(**given)
    assert raised.value.field == field


def test_an_intent_is_trimmed_blank_is_none_and_long_is_refused() -> None:
    assert check_intent(" billing ") == "billing"
    assert check_intent("  ") is None and check_intent(None) is None
    with pytest.raises(BadRoutingInput, match="longer than 64"):
        check_intent("x" * 65)


def test_the_outcomes_weighed_are_this_utc_month_and_the_last() -> None:
    assert months_back(1_796_000_000_000) == ("202611", "202610")  # 2026-11-30
    assert months_back(1_767_225_600_000) == ("202601", "202512")  # 2026-01-01 00:00 UTC
