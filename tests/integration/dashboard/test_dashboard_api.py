"""The dashboard's HTTP API and websockets, against a real worker, broker and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import quote

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from dashboard.api import NOTE_MAX_LENGTH
from tests.conftest import LiveDashboard
from tests.support.cli_fuzz import run_main
from tests.support.helpers import (
    envelope,
    eventually,
    produce,
    produce_events,
    read_topic,
    settings_env,
)
from tests.support.identity_data import Household, household, store

T = TypeVar("T")

ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/api/alerts"),
    ("GET", "/api/alerts/AL-x"),
    ("POST", "/api/alerts/AL-x/ack"),
    ("GET", "/api/customers/C-1/timeline"),
    ("GET", "/api/customers/C-1/context"),
    ("GET", "/api/customers/C-1"),
    ("GET", "/api/customers/C-1/merge-preview?into=C-2"),
    ("POST", "/api/identity/confirm"),
    ("GET", "/api/metrics/surveys"),
]


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _wait(check: Callable[[], T], timeout: float = 30, interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def _socket(live: LiveDashboard, path: str, who: str | None) -> ClientConnection:
    protocols = ["cxt.v1"] + ([f"bearer.{live.tokens[who]}"] if who else [])
    return connect(f"ws://{live.settings.dashboard_host}:{live.settings.dashboard_port}{path}",
                   subprotocols=protocols, open_timeout=10)  # type: ignore[arg-type]


def _next(ws: ClientConnection, wanted: str, timeout: float = 20) -> dict:
    """The next message of type `wanted`, skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        message = orjson.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == wanted:
            return message


def _bottom2_survey(customer: str, **payload: object) -> dict:
    return envelope("survey", customer, occurred_at=_iso(datetime.now(UTC)),
                    survey_id=f"S-{uuid.uuid4().hex[:8]}", score=1, queue="billing-uk",
                    agent_id="A-007", comment="agent was rude", reason_codes=["agent_attitude"],
                    **payload)


def _raised_alert(live: LiveDashboard, http: httpx.Client, survey: dict) -> dict:
    asyncio.run(produce_events(live.settings, [survey]))

    def find() -> dict | None:
        reply = http.get("/api/alerts", params={"limit": 500}, headers=live.headers("advisor"))
        return next((a for a in reply.json()["alerts"]
                     if a["survey_event_id"] == survey["event_id"]), None)

    alert = _wait(find)
    assert alert, live.worker.log()
    return alert


# -- access -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_valid_token(live: LiveDashboard, http: httpx.Client,
                                         method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-real-token-at-all"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        reply = http.request(method, path, headers=headers)
        assert reply.status_code == 401, (path, reply.text)
        assert reply.json()["error"] == "unauthorized"
        assert "Traceback" not in reply.text


@pytest.mark.parametrize(("who", "method", "path"), [
    ("agent", "GET", "/api/alerts"),
    ("agent", "GET", "/api/alerts/AL-x"),
    ("agent", "POST", "/api/alerts/AL-x/ack"),
    ("agent", "GET", "/api/metrics/surveys"),
    ("agent", "GET", "/metrics"),
    ("agent", "GET", "/api/customers/C-1"),
    ("agent", "GET", "/api/customers/C-1/merge-preview?into=C-2"),
    ("advisor", "POST", "/api/identity/confirm"),
    ("service", "POST", "/api/identity/confirm"),
])
def test_roles_are_enforced(live: LiveDashboard, http: httpx.Client, who: str, method: str,
                            path: str) -> None:
    reply = http.request(method, path, headers=live.headers(who))
    assert reply.status_code == 403, reply.text
    assert reply.json()["error"] == "forbidden"


def test_websockets_refuse_missing_wrong_and_foreign_tokens(live: LiveDashboard) -> None:
    cases = [("/ws/alerts", None, 401), ("/ws/alerts", "agent", 403),
             ("/ws/agents/A-007", None, 401), ("/ws/agents/A-007", "other_agent", 403),
             ("/ws/agents/A-007", "advisor", 403)]
    for path, who, status in cases:
        with pytest.raises(InvalidStatus) as refused:
            _socket(live, path, who)
        assert refused.value.response.status_code == status, (path, who)
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{live.settings.dashboard_host}:{live.settings.dashboard_port}"
                "/ws/alerts", additional_headers={"Authorization": "Bearer wrong-token-here"})
    assert refused.value.response.status_code == 401
    # An agent token opens its own channel, and a header works as well as a subprotocol.
    with connect(f"ws://{live.settings.dashboard_host}:{live.settings.dashboard_port}"
                 "/ws/agents/A-007", additional_headers=live.headers("agent")) as ws:
        assert _next(ws, "hello")["agent_id"] == "A-007"


def test_unknown_routes_and_methods_answer_in_json(live: LiveDashboard,
                                                   http: httpx.Client) -> None:
    reply = http.get("/api/nothing-here", headers=live.headers("service"))
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    reply = http.post("/api/alerts", headers=live.headers("service"))
    assert reply.status_code == 405 and reply.json()["error"] == "method_not_allowed"


# -- timelines ------------------------------------------------------------------------------


def test_timeline_pages_filters_and_rejects_bad_parameters(live: LiveDashboard,
                                                           http: httpx.Client) -> None:
    customer = _customer()
    base = datetime(2026, 11, 1, 9, tzinfo=UTC)
    # Two events share an occurred_at: the cursor must still page through both.
    times = [base + timedelta(hours=h) for h in (0, 1, 2, 2, 3, 4, 5)]
    channels = ["call", "chat", "email", "call", "social", "chat", "call"]
    events = [envelope(ch, customer, occurred_at=_iso(t), intent="billing")
              for ch, t in zip(channels, times, strict=True)]
    asyncio.run(produce_events(live.settings, events))
    path = f"/api/customers/{customer}/timeline"
    auth = live.headers("agent")
    assert _wait(lambda: len(http.get(path, headers=auth).json()["events"]) == 7), \
        live.worker.log()

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"before": cursor} if cursor else {})
        page = http.get(path, params=params, headers=auth).json()
        assert page["customer_id"] == customer
        seen += [e["event_id"] for e in page["events"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 7
    occurred = [e["occurred_at"] for e in http.get(path, headers=auth).json()["events"]]
    assert occurred == sorted(occurred, reverse=True)

    calls = http.get(path, params={"channel": "call"}, headers=auth).json()["events"]
    assert len(calls) == 3 and {e["channel"] for e in calls} == {"call"}
    window = http.get(path, params={"since": _iso(base + timedelta(hours=2)),
                                    "until": _iso(base + timedelta(hours=4))}, headers=auth)
    assert len(window.json()["events"]) == 4

    for params, fragment in [({"limit": 0}, "limit=0"), ({"limit": "ten"}, "whole number"),
                             ({"channel": "fax"}, "channel='fax'"),
                             ({"since": "yesterday"}, "since"),
                             ({"before": "garbage"}, "cursor"),
                             ({"colour": "red"}, "unknown query parameter 'colour'")]:
        reply = http.get(path, params=params, headers=auth)
        assert reply.status_code == 400, (params, reply.text)
        assert fragment in reply.json()["message"], (params, reply.text)

    empty = http.get(f"/api/customers/{_customer()}/timeline", headers=auth).json()
    assert empty["events"] == [] and empty["next"] is None


# -- alerts ---------------------------------------------------------------------------------


def test_alert_list_detail_and_filters(live: LiveDashboard, http: httpx.Client) -> None:
    customer = _customer()
    alert = _raised_alert(live, http, _bottom2_survey(customer))
    auth = live.headers("advisor")
    one = http.get(f"/api/alerts/{alert['alert_id']}", headers=auth)
    assert one.status_code == 200 and one.json()["customer_id"] == customer
    assert one.json()["status"] == "open"

    def ids(**params: object) -> set[str]:
        reply = http.get("/api/alerts", params={"limit": 500, **params}, headers=auth)
        assert reply.status_code == 200, reply.text
        return {a["alert_id"] for a in reply.json()["alerts"]}

    assert alert["alert_id"] in ids(status="open,escalated", queue="billing-uk", agent="A-007")
    assert alert["alert_id"] not in ids(status="resolved")
    assert alert["alert_id"] not in ids(queue="other-queue")
    assert alert["alert_id"] in ids(category=alert["category"])

    first = http.get("/api/alerts", params={"limit": 1}, headers=auth).json()
    if first["next"]:
        second = http.get("/api/alerts", params={"limit": 1, "before": first["next"]},
                          headers=auth).json()
        assert second["alerts"][0]["alert_id"] != first["alerts"][0]["alert_id"]

    assert http.get("/api/alerts/AL-missing", headers=auth).status_code == 404
    for params in ({"status": "closed"}, {"category": "weather"}, {"limit": 501}):
        reply = http.get("/api/alerts", params=params, headers=auth)
        assert reply.status_code == 400, (params, reply.text)


def test_alert_actions_through_the_api(live: LiveDashboard, http: httpx.Client) -> None:
    alert = _raised_alert(live, http, _bottom2_survey(_customer()))
    url = f"/api/alerts/{alert['alert_id']}"
    advisor, service = live.headers("advisor"), live.headers("service")

    bad = http.post(f"{url}/ack", content=b"{not json", headers=advisor)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["message"]
    assert http.post(f"{url}/ack", json={"colour": "red"}, headers=advisor).status_code == 422
    assert http.post(f"{url}/ack", json=[1], headers=advisor).status_code == 422
    assert http.post(f"{url}/ack", headers=live.headers("stranger")).status_code == 403
    assert http.post(f"{url}/ack", json={"actor": "adv-ben"}, headers=advisor).status_code == 403
    assert http.post(f"{url}/shout", headers=advisor).status_code == 404

    acked = http.post(f"{url}/ack", json={"note": "calling back"}, headers=advisor)
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "adv-ana"
    again = http.post(f"{url}/ack", headers=advisor)
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"

    assert http.post(f"{url}/callback", json={"outcome": "maybe"},
                     headers=advisor).status_code == 422
    called = http.post(f"{url}/callback", json={"outcome": "reached"}, headers=advisor)
    assert called.status_code == 200 and called.json()["callbacks"]

    assert http.post(f"{url}/resolve", headers=service).status_code == 422  # no actor
    resolved = http.post(f"{url}/resolve", json={"actor": "adv-ana", "category": "skill"},
                         headers=service)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["category"] == "skill"


def test_alert_detail_has_the_customer_record_and_all_their_open_alerts(
        live: LiveDashboard, http: httpx.Client) -> None:
    customer = _customer()
    record = {"customer_id": customer, "name": "Cal Back", "segment": "vip", "plan": "premium",
              "identifiers": {"phones": ["+447700900123"], "emails": ["cal@example.org"]}}
    asyncio.run(produce(live.settings, live.settings.topics.customers,
                        [(customer.encode(), orjson.dumps(record))]))
    assert _wait(lambda: _profile_stored(live, http, customer)), live.worker.log()
    first = _raised_alert(live, http, _bottom2_survey(customer))
    second = _raised_alert(live, http, _bottom2_survey(customer, contact_channel="call"))
    auth = live.headers("advisor")
    detail = http.get(f"/api/alerts/{first['alert_id']}", headers=auth).json()
    assert detail["customer"]["name"] == "Cal Back"
    assert detail["customer"]["identifiers"]["phones"] == ["+447700900123"]
    assert {a["alert_id"] for a in detail["customer_open_alerts"]} == \
        {first["alert_id"], second["alert_id"]}
    assert all(a["ack_deadline"] for a in detail["customer_open_alerts"])

    # Resolved alerts leave the list of open ones; a customer with no record has null.
    for action in ("ack", "resolve"):
        assert http.post(f"/api/alerts/{second['alert_id']}/{action}",
                         headers=auth).status_code == 200
    detail = http.get(f"/api/alerts/{first['alert_id']}", headers=auth).json()
    assert [a["alert_id"] for a in detail["customer_open_alerts"]] == [first["alert_id"]]
    anonymous = _raised_alert(live, http, _bottom2_survey(_customer()))
    assert http.get(f"/api/alerts/{anonymous['alert_id']}", headers=auth).json()["customer"] \
        is None
    # Personal data: not for agent tokens (they see their own contacts' context instead).
    assert http.get(f"/api/alerts/{first['alert_id']}",
                    headers=live.headers("agent")).status_code == 403


def _profile_stored(live: LiveDashboard, http: httpx.Client, customer: str) -> bool:
    reply = http.get(f"/api/customers/{customer}/context", headers=live.headers("service"))
    return reply.status_code == 200 and reply.json()["customer"] is not None


def test_alert_action_gaps_unknown_parameters_notes_categories_and_resolved(
        live: LiveDashboard, http: httpx.Client) -> None:
    alert = _raised_alert(live, http, _bottom2_survey(_customer()))
    url = f"/api/alerts/{alert['alert_id']}"
    auth = live.headers("advisor")

    unknown = http.post(f"{url}/ack", params={"x": "1"}, headers=auth)
    assert unknown.status_code == 400, unknown.text
    assert "unknown query parameter 'x'" in unknown.json()["message"]
    assert http.get(url, params={"x": "1"}, headers=auth).status_code == 400
    assert http.get(url, headers=auth).json()["status"] == "open"  # nothing was done

    # The note may be as long as the topic's contract allows, and no longer.
    limit = NOTE_MAX_LENGTH
    too_long = http.post(f"{url}/ack", json={"note": "n" * (limit + 1)}, headers=auth)
    assert too_long.status_code == 422 and f"longer than {limit}" in too_long.json()["message"]
    acked = http.post(f"{url}/ack", json={"note": "n" * limit}, headers=auth)
    assert acked.status_code == 200, acked.text
    assert acked.json()["history"][-1]["note"] == "n" * limit

    # The person's category replaces the rule's; "unclassified" is no cause to close with.
    before = acked.json()
    assert before["category"] != "unclassified"
    refused = http.post(f"{url}/resolve", json={"category": "unclassified"}, headers=auth)
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_body", refused.text
    resolved = http.post(f"{url}/resolve", json={"category": "customer_expectation"},
                         headers=auth)
    assert resolved.status_code == 200, resolved.text
    after = resolved.json()
    assert after["category"] == "customer_expectation" and after["categorised_by"] == "adv-ana"
    assert after["category_rule"] is None
    step = after["history"][-1]
    assert (step["actor"], step["category_from"], step["category_to"]) == \
        ("adv-ana", before["category"], "customer_expectation")

    again = http.post(f"{url}/resolve", headers=auth)
    assert again.status_code == 409, again.text
    assert "already resolved by adv-ana" in again.json()["message"]
    assert "acknowledged first" not in again.json()["message"]


def test_resolving_an_unclassified_alert_needs_a_category(live: LiveDashboard,
                                                          http: httpx.Client) -> None:
    survey = envelope("survey", _customer(), occurred_at=_iso(datetime.now(UTC)),
                      survey_id=f"S-{uuid.uuid4().hex[:8]}", score=1, queue="billing-uk",
                      comment="meh", reason_codes=[])
    alert = _raised_alert(live, http, survey)
    assert alert["category"] == "unclassified"
    url = f"/api/alerts/{alert['alert_id']}"
    auth = live.headers("advisor")
    assert http.post(f"{url}/ack", headers=auth).status_code == 200

    for body in (None, {"note": "sorted"}, {"category": None}):
        missing = http.post(f"{url}/resolve", json=body, headers=auth)
        assert missing.status_code == 422, (body, missing.text)
        assert missing.json() == {
            "error": "category_required",
            "message": f"cannot resolve alert {alert['alert_id']}: its category is "
                       "unclassified; pass a category, one of skill, business_operations, "
                       "customer_expectation"}
    for category in ("unclassified", "weather", 3):
        invalid = http.post(f"{url}/resolve", json={"category": category}, headers=auth)
        assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_body", \
            invalid.text
    # Refused before anything was published: the alert is still being worked.
    assert http.get(url, headers=auth).json()["status"] == "acknowledged"

    resolved = http.post(f"{url}/resolve", json={"category": "customer_expectation"},
                         headers=auth)
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["category"]) == \
        ("resolved", "customer_expectation")
    listed = http.get("/api/alerts", params={"category": "customer_expectation",
                                             "status": "resolved", "limit": 500}, headers=auth)
    assert alert["alert_id"] in [a["alert_id"] for a in listed.json()["alerts"]]


def test_alert_feed_pushes_raised_and_changed_alerts(live: LiveDashboard,
                                                     http: httpx.Client) -> None:
    with _socket(live, "/ws/alerts", "advisor") as ws:
        assert ws.subprotocol == "cxt.v1"
        assert _next(ws, "hello")["channel"] == "alerts"
        survey = _bottom2_survey(_customer())
        asyncio.run(produce_events(live.settings, [survey]))
        raised = _next(ws, "alert")["alert"]
        while raised["survey_event_id"] != survey["event_id"]:
            raised = _next(ws, "alert")["alert"]
        assert raised["event"] == "raised" and raised["status"] == "open"
        http.post(f"/api/alerts/{raised['alert_id']}/ack", headers=live.headers("advisor"))
        update = _next(ws, "alert")["alert"]
        while update["alert_id"] != raised["alert_id"]:
            update = _next(ws, "alert")["alert"]
        assert update["status"] == "acknowledged" and update["version"] > raised["version"]

        # Clients only listen: anything but a ping gets a precise error, and the
        # connection stays usable.
        ws.send("hello?")
        error = _next(ws, "error")
        assert error["error"] == "bad_message" and "ping" in error["message"]
        ws.send(b"\x00\x01")
        assert _next(ws, "error")["error"] == "bad_message"
        ws.send('{"type": "ping"}')
        assert _next(ws, "pong") == {"type": "pong"}


# -- agents ---------------------------------------------------------------------------------


def _history(customer: str) -> list[dict]:
    now = datetime.now(UTC)
    ago = lambda days: _iso(now - timedelta(days=days))  # noqa: E731
    billing_call = envelope("call", customer, occurred_at=ago(6), event_type="call.ended",
                            intent="billing", queue="billing-uk", agent_id="A-011",
                            ivr_path=["main", "billing"], outcome="unresolved")
    return [
        billing_call,
        envelope("chat", customer, occurred_at=ago(4), event_type="chat.ended",
                 intent="technical", queue="tech-chat", agent_id="A-012", outcome="resolved"),
        envelope("email", customer, occurred_at=ago(3), intent="billing",
                 subject="Charged twice this month", agent_id="A-013"),
        envelope("social", customer, occurred_at=ago(2), network="x", post_id="1",
                 handle="@someone", text="Is there an outage?"),
        envelope("survey", customer, occurred_at=ago(1), survey_id="S-1", score=2,
                 contact_id=billing_call["event_id"], contact_channel="call",
                 agent_id="A-011", queue="billing-uk", comment="billing error still not fixed",
                 reason_codes=["billing_error"]),
    ]


def test_agent_gets_the_relevant_context_when_a_call_reaches_them(
        live: LiveDashboard, http: httpx.Client) -> None:
    customer = _customer()
    history = _history(customer)
    records = [(customer.encode(), orjson.dumps({"customer_id": customer, "name": "Ada Test",
                                                 "plan": "premium", "plan_usage_pct": 12}))]
    asyncio.run(produce(live.settings, live.settings.topics.customers, records))
    asyncio.run(produce_events(live.settings, history))
    path = f"/api/customers/{customer}/timeline"
    assert _wait(lambda: len(http.get(path, headers=live.headers("agent"))
                             .json()["events"]) == len(history)), live.worker.log()
    # The customer record goes through another consumer than the interactions: in a
    # worker just started it may still be waiting for its partitions.
    assert _wait(lambda: http.get(f"/api/customers/{customer}/context",
                                  headers=live.headers("service")).json()["customer"]), \
        live.worker.log()

    with _socket(live, "/ws/agents/A-007", "agent") as mine, \
            _socket(live, "/ws/agents/A-008", "other_agent") as theirs:
        _next(mine, "hello"), _next(theirs, "hello")
        call = envelope("call", customer, occurred_at=_iso(datetime.now(UTC)),
                        event_type="call.started", intent="billing", queue="billing-uk",
                        agent_id="A-007", ivr_path=["main", "billing", "disputes"])
        sent = time.monotonic()
        asyncio.run(produce_events(live.settings, [call]))
        context = _next(mine, "contact")["context"]
        elapsed = time.monotonic() - sent
        with pytest.raises(TimeoutError):
            _next(theirs, "contact", timeout=1.5)

    assert context["customer_id"] == customer and context["intent"] == "billing"
    assert context["contact"]["event_id"] == call["event_id"]
    assert context["customer"]["name"] == "Ada Test"
    order = [e["event_id"] for e in context["events"]]
    assert call["event_id"] not in order
    relevance = [e["relevance"] for e in context["events"]]
    # Billing first, newest first: the survey (it rates the billing call), the billing
    # email, the billing call; then the rest, newest first.
    billing_call, tech_chat, billing_email, social, survey = history
    assert order[:3] == [survey["event_id"], billing_email["event_id"], billing_call["event_id"]]
    assert relevance == ["intent"] * 3 + ["other"] * 2
    assert order[-2:] == [social["event_id"], tech_chat["event_id"]]
    # The call is the third about billing in a week: its repeat-contact alert may be
    # raised by the time the context is read, beside the survey's.
    assert [a["survey_event_id"] for a in context["open_alerts"]
            if a.get("kind") != "negative_interaction"] == [survey["event_id"]]
    flagged = {e["event_id"] for e in context["events"] if "open_alert" in e["flags"]}
    assert survey["event_id"] in flagged
    rules = [p["rule"] for p in context["prompts"]]
    # Bad survey within 30 days, the third billing contact in 7 days, a plan used 12%.
    assert set(rules) == {"recent-bottom-2-box", "repeat-contact", "plan-under-used"}
    print(f"call.started in Kafka -> context on the agent's websocket: {elapsed * 1000:.0f} ms")

    # The same context on request, for a customer looked up without a live contact.
    reply = http.get(f"/api/customers/{customer}/context", params={"intent": "billing"},
                     headers=live.headers("agent"))
    assert reply.status_code == 200
    # Without a live contact, the call itself is just the newest billing interaction.
    assert [e["event_id"] for e in reply.json()["events"]] == [call["event_id"], *order]
    assert http.get(f"/api/customers/{customer}/context", params={"limit": "x"},
                    headers=live.headers("agent")).status_code == 400


def test_the_live_feed_survives_garbage_on_the_timeline_topic(
        live: LiveDashboard, http: httpx.Client) -> None:
    garbage = [b'not json "call.started"', b'["call.started"]',
               b'{"type": "call.started", "payload": {"agent_id": ["A-007"]}}',
               b'{"type": "call.started", "payload": "A-007"}']
    with _socket(live, "/ws/agents/A-007", "agent") as ws:
        _next(ws, "hello")
        asyncio.run(produce(live.settings, live.settings.topics.timeline,
                            [(None, g) for g in garbage]))
        call = envelope("call", _customer(), occurred_at=_iso(datetime.now(UTC)),
                        event_type="call.started", intent="sales", agent_id="A-007")
        asyncio.run(produce_events(live.settings, [call]))
        assert _next(ws, "contact")["context"]["contact"]["event_id"] == call["event_id"]
    assert http.get("/healthz", headers=live.headers("service")).status_code == 200


# -- metrics and health ----------------------------------------------------------------------


def test_survey_metrics_by_hour_and_day(live: LiveDashboard, http: httpx.Client) -> None:
    auth = live.headers("advisor")
    _raised_alert(live, http, _bottom2_survey(_customer()))
    hourly = http.get("/api/metrics/surveys", params={"period": "hour", "hours": 24},
                      headers=auth).json()
    assert hourly["period"] == "hour" and len(hourly["rows"]) == 24
    assert hourly["rows"][-1]["bottom2"] >= 1 and hourly["rows"][-1]["responses"] >= 1
    daily = http.get("/api/metrics/surveys", params={"period": "day", "days": 30},
                     headers=auth).json()
    assert len(daily["rows"]) == 30 and daily["rows"][-1]["bottom2"] >= 1
    for params in ({"period": "week"}, {"period": "day", "hours": 3}, {"hours": 0}):
        reply = http.get("/api/metrics/surveys", params=params, headers=auth)
        assert reply.status_code == 400, (params, reply.text)


def test_health_and_prometheus_metrics(live: LiveDashboard, http: httpx.Client) -> None:
    health = http.get("/healthz", headers=live.headers("agent"))
    assert health.status_code == 200, health.text
    checks = health.json()["checks"]
    assert checks["redis"]["ok"] and checks["kafka"]["ok"] and checks["live_feed"]["ok"]
    http.get("/api/alerts", headers=live.headers("advisor"))
    text = http.get("/metrics", headers=live.headers("service")).text
    assert 'cxt_dashboard_http_requests_total{method="GET",route="/api/alerts",status="200"}' \
        in text
    assert "cxt_dashboard_agent_context_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


# -- customers: show, merge preview, who is calling (identity state stored straight into
# Redis by tests.support.identity_data) ----------------------------------------------


@pytest.fixture(scope="module")
def house(live: LiveDashboard) -> Household:
    found = household()
    store(live.settings, found.seed)
    return found


def _cli_json(live: LiveDashboard, *argv: str) -> dict:
    outcome = run_main([*argv, "--json"], settings_env(live.settings))
    assert outcome.status == 0, outcome.stderr
    return orjson.loads(outcome.stdout)


def _error(reply: httpx.Response, status: int, code: str, field: str) -> None:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["error"] == code and field in body["message"], body


def test_customer_is_the_cli_json_for_advisory_roles_only(
        live: LiveDashboard, http: httpx.Client, house: Household) -> None:
    expected = _cli_json(live, "customers", "show", house.a)
    for who in ("advisor", "service"):
        reply = http.get(f"/api/customers/{house.a}", headers=live.headers(who))
        assert reply.status_code == 200, reply.text
        assert reply.json() == expected
    assert expected["identifiers"][0]["shared_with"] == [house.b]
    _error(http.get(f"/api/customers/{house.a}", headers=live.headers("agent")),
           403, "forbidden", "advisor or service")
    _error(http.get("/api/customers/C-nobody-here", headers=live.headers("advisor")),
           404, "not_found", "C-nobody-here")
    _error(http.get(f"/api/customers/{quote(house.profile, safe='')}",
                    headers=live.headers("advisor")), 400, "bad_request", "customer_id")
    _error(http.get(f"/api/customers/{house.a}?x=1", headers=live.headers("advisor")),
           400, "bad_request", "'x'")


def test_merge_preview_is_the_cli_json_and_names_the_field_on_bad_input(
        live: LiveDashboard, http: httpx.Client, house: Household) -> None:
    expected = _cli_json(live, "customers", "merge-preview", house.a, house.b)
    reply = http.get(f"/api/customers/{house.a}/merge-preview", params={"into": house.b},
                     headers=live.headers("advisor"))
    assert reply.status_code == 200, reply.text
    assert reply.json() == expected and expected["entries"]["total"] == 5

    def preview(customer_id: str, who: str = "service", **params: str) -> httpx.Response:
        return http.get(f"/api/customers/{quote(customer_id, safe='')}/merge-preview",
                        params=params, headers=live.headers(who))

    _error(preview(house.a), 400, "bad_request", "into")
    _error(preview(house.a, into="~phone:+1"), 400, "bad_request", "into")
    _error(preview("~phone:+1", into=house.a), 400, "bad_request", "customer_id")
    _error(preview(house.a, into=house.m), 409, "merge_cycle", "into")
    _error(preview(house.a, into=house.a), 409, "merge_cycle", "itself")
    _error(preview(house.m, into=house.a), 409, "already_merged", "into")
    _error(preview(house.a, "agent", into=house.b), 403, "forbidden", "advisor or service")


def test_an_ambiguous_profiles_context_asks_who_is_calling(
        live: LiveDashboard, http: httpx.Client, house: Household) -> None:
    reply = http.get(f"/api/customers/{quote(house.profile, safe='')}/context",
                     headers=live.headers("agent"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["who_is_calling"] == {
        "profile_id": house.profile, "event_id": house.waiting, "waiting": 1,
        "candidates": [{"customer_id": house.a, "name": "Ada Lovelace"},
                       {"customer_id": house.b, "name": "Byron Lovelace"}]}
    plain = http.get(f"/api/customers/{house.a}/context", headers=live.headers("agent"))
    assert "who_is_calling" not in plain.json()


def test_confirm_refuses_bad_input_naming_the_field(
        live: LiveDashboard, http: httpx.Client, house: Household) -> None:
    good = {"profile_id": house.profile, "event_id": house.waiting, "customer_id": house.a}

    def confirm(who: str = "agent", **changes: object) -> httpx.Response:
        body = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return http.post("/api/identity/confirm", json=body, headers=live.headers(who))

    _error(confirm(customer_id=house.m), 409, "not_a_candidate", "customer_id")
    _error(confirm(customer_id="~phone:+1"), 422, "invalid_body", "customer_id")
    _error(confirm(profile_id=house.a), 422, "invalid_body", "profile_id")
    _error(confirm(event_id=None), 422, "invalid_body", "event_id")
    _error(confirm(event_id=7), 422, "invalid_body", "event_id")
    _error(confirm(event_id="nosuch"), 409, "unknown_event", "event_id")
    _error(confirm(actor="someone"), 422, "invalid_body", "actor")
    _error(confirm("advisor"), 403, "forbidden", "agent")


def test_confirm_publishes_the_identity_action_and_the_worker_files_it(
        live: LiveDashboard, http: httpx.Client) -> None:
    # A household of its own: this one's waiting call moves.
    house = household()
    store(live.settings, house.seed)
    body = {"profile_id": house.profile, "event_id": house.waiting, "customer_id": house.b}
    reply = http.post("/api/identity/confirm", json=body, headers=live.headers("agent"))
    assert reply.status_code == 202, reply.text
    action = reply.json()
    assert action == {**body, "action": "confirm", "actor": "A-007",
                      "action_id": action["action_id"], "at": action["at"]}
    uuid.UUID(action["action_id"])
    topic = live.settings.topics.identity_actions
    records = asyncio.run(read_topic(live.settings, topic, until=lambda seen: any(
        r.value and orjson.loads(r.value)["action_id"] == action["action_id"] for r in seen),
        timeout=15))
    sent = [r for r in records if orjson.loads(r.value)["action_id"] == action["action_id"]]
    assert len(sent) == 1 and sent[0].key == house.profile.encode()
    assert orjson.loads(sent[0].value) == action

    def filed() -> bool:
        events = http.get(f"/api/customers/{house.b}/timeline",
                          headers=live.headers("service")).json()["events"]
        return any(e["event_id"] == house.waiting for e in events)

    assert asyncio.run(eventually(filed, timeout=15)), live.worker.log()
