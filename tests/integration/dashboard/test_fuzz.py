"""Bad input at scale: property-based and fuzzed inputs for the validate stage, the Redis
key layout, a live worker, and the dashboard's HTTP API and websockets.

Every run is deterministic (derandomized, no example database) and bounded; the
bigger runs of the same properties are in tests/slow/test_fuzz_slow.py.
"""

from __future__ import annotations

import urllib.parse

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from schemas.validate import (
    Interaction,
    Rejection,
    check_customer,
    check_interaction,
)
from tests.conftest import LiveDashboard
from tests.support.fuzz import (
    _CUSTOMER_KEYS,
    _SPLICE,
    _TRACE,
    BAD_TIMESTAMPS,
    CHANNELS,
    INJECTION_IDS,
    KEYS,
    MAX_BYTES,
    ROUTES,
    Route,
    _dumps,
    _ids,
    _owners,
    assert_checked,
    assert_clean_reply,
    fuzz,
    fuzz_live_worker,
    fuzz_route,
    json_values,
    raw_values,
)
from tests.support.helpers import envelope

# -- 1. the validate stage, pure --------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
@fuzz(80)
@given(data=st.data())
def test_check_interaction_never_raises_and_names_a_reason(channel: str, data: st.DataObject
                                                           ) -> None:
    raw = data.draw(raw_values(channel))
    assert_checked(check_interaction(raw, channel, max_bytes=MAX_BYTES), channel)


@pytest.mark.parametrize("channel", CHANNELS)
@fuzz(40)
@given(data=st.data())
def test_broken_envelopes_are_rejected_with_the_right_reason(channel: str, data: st.DataObject
                                                             ) -> None:
    """Targeted breakages must be rejected, and for the right reason."""
    event = envelope(channel, "C-1")
    kind = data.draw(st.sampled_from(("timestamp", "deep", "utf8", "huge", "not_object",
                                      "no_customer", "channel")))
    expected: set[str]
    if kind == "timestamp":
        event["occurred_at"] = data.draw(st.sampled_from(BAD_TIMESTAMPS).filter(
            lambda t: 0 < len(t) <= 64))
        expected = {"invalid_timestamp"}
    elif kind == "deep":
        event["payload"]["nested"] = "__fuzz_splice__"
        depth = data.draw(st.integers(65, 5000))
        splice = (b"[" * depth + b"]" * depth) if data.draw(st.booleans()) else \
            (b'{"a":' * depth + b"1" + b"}" * depth)
        expected = {"schema_violation", "invalid_json"}  # orjson refuses beyond 1024
    elif kind == "utf8":
        event["payload"]["text"] = "__fuzz_splice__"
        splice = data.draw(st.sampled_from((b'"a\xffb"', b'"\xc3\x28"', b'"\xed\xa0\x80"')))
        expected = {"invalid_json"}
    elif kind == "huge":
        event["payload"]["text"] = "x" * data.draw(st.integers(MAX_BYTES, MAX_BYTES + 1000))
        expected = {"too_large"}
    elif kind == "not_object":
        raw = _dumps(data.draw(json_values.filter(lambda v: not isinstance(v, dict))))
        result = check_interaction(raw, channel, max_bytes=MAX_BYTES)
        assert isinstance(result, Rejection) and result.reason == "not_an_object", result
        return
    elif kind == "no_customer":
        event["customer_id"] = data.draw(st.none() | st.integers() | st.lists(st.text()))
        event["identity"] = data.draw(st.none() | st.just({"phone": None}) | st.just({}))
        expected = {"no_customer"}
    else:
        other = data.draw(st.sampled_from([c for c in CHANNELS if c != channel]))
        event["type"] = envelope(other)["type"]
        expected = {"channel_mismatch"}
    raw = _dumps(event)
    if kind in ("deep", "utf8"):
        raw = raw.replace(_SPLICE, splice, 1)
    result = check_interaction(raw, channel, max_bytes=MAX_BYTES)
    assert isinstance(result, Rejection) and result.reason in expected, (kind, result)
    assert "could not be checked" not in result.message


def test_an_instant_after_the_year_9999_is_an_invalid_timestamp() -> None:
    # Found by this fuzzing: -23:59 on the last day of 9999 is in the year 10000 UTC,
    # which the worker's survey hour buckets cannot render (ValueError in the batch).
    event = envelope("survey", "C-1", occurred_at="9999-12-31T23:59:59-23:59")
    result = check_interaction(orjson.dumps(event), "survey", max_bytes=MAX_BYTES)
    assert isinstance(result, Rejection) and result.reason == "invalid_timestamp", result
    assert "after 9999-12-31" in result.message
    late = envelope("survey", "C-1", occurred_at="9999-12-31T23:59:59.999Z")
    assert isinstance(check_interaction(orjson.dumps(late), "survey", max_bytes=MAX_BYTES),
                      Interaction)


@fuzz(150)
@given(customer_id=st.sampled_from(INJECTION_IDS) | st.text(min_size=1, max_size=140),
       channel=st.sampled_from(CHANNELS))
def test_any_customer_id_is_rejected_or_stays_inside_its_own_keys(customer_id: str,
                                                                  channel: str) -> None:
    raw = orjson.dumps(envelope(channel, customer_id))
    result = check_interaction(raw, channel, max_bytes=MAX_BYTES)
    assert_checked(result, channel)
    if isinstance(result, Interaction):
        assert result.customer_id == customer_id


@fuzz(300)
@given(a=_owners, b=_owners)
def test_two_owners_never_share_a_key(a: str, b: str) -> None:
    keys_a = {key_of(a) for key_of in _CUSTOMER_KEYS}
    keys_b = {key_of(b) for key_of in _CUSTOMER_KEYS}
    assert len(keys_a) == len(_CUSTOMER_KEYS)
    if a != b:
        assert not keys_a & keys_b, (a, b)
    # Customer keys never meet identity keys or the global ones.
    shared = {KEYS.identity(b), KEYS.alert(b), KEYS.alerts_recent(), KEYS.alerts_due(),
              KEYS.survey_counters(b), KEYS.survey_counted(b)}
    assert not keys_a & shared, (a, b)


@fuzz(300)
@given(owner=_owners.filter(lambda o: not o.startswith("}")))
def test_an_owners_keys_share_one_cluster_slot(owner: str) -> None:
    assert len({key_slot(key_of(owner).encode()) for key_of in _CUSTOMER_KEYS}) == 1, owner


def test_a_customer_id_starting_with_a_brace_is_refused() -> None:
    # Found by this fuzzing: "}abc" leaves the hash tag of its keys empty, so on Redis
    # Cluster they would spread over slots and the store's scripts fail (CROSSSLOT).
    slots = {key_slot(key_of("}abc").encode()) for key_of in _CUSTOMER_KEYS}
    assert len(slots) > 1  # why such ids cannot be stored
    for channel in CHANNELS:
        result = check_interaction(orjson.dumps(envelope(channel, "}abc")), channel,
                                   max_bytes=MAX_BYTES)
        assert isinstance(result, Rejection) and result.reason == "schema_violation", result
        assert "customer_id: must not start with" in result.message and "'}'" in result.message
    refused = check_customer(orjson.dumps({"customer_id": "}abc"}))
    assert isinstance(refused, Rejection) and refused.reason == "schema_violation"
    assert isinstance(check_customer(orjson.dumps({"customer_id": "a}bc"})), dict)


# -- 2. a live worker -----------------------------------------------------------------------


def test_a_live_worker_dead_letters_every_fuzzed_record(live: LiveDashboard) -> None:
    fuzz_live_worker(live, 300)


# -- 3. the HTTP API and websockets -----------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_http_routes_answer_fuzz_with_a_precise_4xx(
        live: LiveDashboard, http: httpx.Client, route: Route) -> None:
    fuzz_route(live, http, route, 30)


@pytest.mark.parametrize(("path", "params"), [
    # Found by this fuzzing: each was a 500 (OverflowError, ValueError) before.
    ("/api/customers/C-1/timeline", {"since": "99999999d"}),
    ("/api/customers/C-1/timeline", {"until": "9999999999999m"}),
    ("/api/customers/C-1/timeline", {"before": "\u00b2:E-1"}),
])
def test_http_regressions_found_by_fuzzing(live: LiveDashboard, http: httpx.Client, path: str,
                                           params: dict[str, str]) -> None:
    reply = http.get(path, params=params, headers=live.headers("service"))
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "bad_request"


@fuzz(40)
@given(query=st.text(max_size=60), raw_path=st.binary(min_size=1, max_size=40))
def test_http_raw_query_strings_and_paths(live: LiveDashboard, http: httpx.Client,
                                          query: str, raw_path: bytes) -> None:
    headers = live.headers("service")
    encoded = urllib.parse.quote_from_bytes(raw_path, safe="/:{}*~")
    for target in (f"/api/customers/C-1/timeline?{urllib.parse.quote(query, safe='=&:,')}",
                   f"/api/alerts?{urllib.parse.quote(query, safe='=&')}",
                   f"/api/customers/{encoded}/timeline", f"/api/alerts/{encoded}"):
        assert_clean_reply(http.get(target, headers=headers), target)


def _ws_url(live: LiveDashboard, path: str) -> str:
    return f"ws://{live.settings.dashboard_host}:{live.settings.dashboard_port}{path}"


@fuzz(30)
@given(agent_id=_ids)
def test_websocket_bad_agent_ids_are_refused_with_a_4xx_or_served(live: LiveDashboard,
                                                                  agent_id: str) -> None:
    url = _ws_url(live, "/ws/agents/" + urllib.parse.quote(agent_id, safe=""))
    try:
        with connect(url, additional_headers=live.headers("service"), open_timeout=10) as ws:
            hello = orjson.loads(ws.recv(timeout=10))
            assert hello["type"] == "hello", hello
    except InvalidStatus as refused:
        status = refused.response.status_code
        assert 400 <= status < 500, (agent_id, status)
        body = refused.response.body or b""
        assert not _TRACE.search(body.decode(errors="replace")), body
        if "/" not in agent_id:  # else no route matches, and uvicorn refuses on its own
            assert orjson.loads(body)["error"], (agent_id, status, body)


def _reply(ws: ClientConnection) -> dict:
    """The next answer to the client, skipping what the feed pushes meanwhile."""
    while True:
        message = orjson.loads(ws.recv(timeout=10))
        if message["type"] not in ("alert", "contact"):
            return message


_client_messages = st.one_of(st.text(max_size=200), st.binary(max_size=200),
                             json_values.map(lambda v: _dumps(v).decode()),
                             st.just('{"type": "ping"}'), st.just("x" * 60_000))


@fuzz(15)
@given(messages=st.lists(_client_messages, min_size=1, max_size=6))
def test_websocket_client_messages_get_an_error_or_a_pong(live: LiveDashboard,
                                                          messages: list[str | bytes]) -> None:
    for path, who in (("/ws/alerts", "advisor"), ("/ws/agents/A-007", "agent")):
        with connect(_ws_url(live, path), additional_headers=live.headers(who),
                     open_timeout=10) as ws:
            assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
            for message in messages:
                ws.send(message)
                reply = _reply(ws)
                if reply["type"] != "pong":
                    assert reply["type"] == "error" and reply["error"] == "bad_message", reply
            ws.send('{"type": "ping"}')  # still usable afterwards
            assert _reply(ws)["type"] == "pong"
        assert ws.close_code in (1000, 1005), ws.close_code


def test_websocket_oversized_and_abrupt_clients_never_get_an_internal_error(
        live: LiveDashboard) -> None:
    for frame in ("y" * 2_000_000, b"\xff" * 2_000_000):
        with connect(_ws_url(live, "/ws/alerts"), additional_headers=live.headers("advisor"),
                     open_timeout=10, max_size=None) as ws:
            ws.recv(timeout=10)
            try:
                ws.send(frame)
                assert _reply(ws)["error"] == "bad_message"
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                assert code != 1011, closed
            assert ws.close_code != 1011
    # ...and the dashboard still serves.
    reply = httpx.get(f"{live.url}/healthz", headers=live.headers("service"), timeout=10)
    assert reply.status_code == 200, reply.text
