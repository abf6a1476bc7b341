"""The properties of tests/integration/dashboard/test_fuzz.py, with ten to twenty times
the examples."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from schemas.validate import check_interaction
from tests.conftest import LiveDashboard
from tests.support.fuzz import (
    _CUSTOMER_KEYS,
    CHANNELS,
    MAX_BYTES,
    ROUTES,
    Route,
    _owners,
    assert_checked,
    fuzz,
    fuzz_live_worker,
    fuzz_route,
    raw_values,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("channel", CHANNELS)
@fuzz(2000)
@given(data=st.data())
def test_check_interaction_never_raises_big(channel: str, data: st.DataObject) -> None:
    raw = data.draw(raw_values(channel))
    assert_checked(check_interaction(raw, channel, max_bytes=MAX_BYTES), channel)


@fuzz(5000)
@given(a=_owners, b=_owners)
def test_owner_keys_stay_apart_and_together_big(a: str, b: str) -> None:
    keys_a = {key_of(a) for key_of in _CUSTOMER_KEYS}
    if a != b:
        assert not keys_a & {key_of(b) for key_of in _CUSTOMER_KEYS}, (a, b)
    if not a.startswith("}"):  # refused by validation, see test_fuzz.py
        assert len({key_slot(k.encode()) for k in keys_a}) == 1, a


def test_a_live_worker_dead_letters_every_fuzzed_record_big(
        live: LiveDashboard) -> None:
    fuzz_live_worker(live, 3000)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_http_routes_answer_fuzz_with_a_precise_4xx_big(
        live: LiveDashboard, http: httpx.Client, route: Route) -> None:
    fuzz_route(live, http, route, 400)
