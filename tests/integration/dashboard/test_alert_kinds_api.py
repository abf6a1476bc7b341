"""GET /api/alerts?kind= and the agent context's at_risk, against the live dashboard and the
real Redis (alerts and scored entries stored through the worker's own store classes)."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import LiveDashboard
from tests.support.alert_data import negative_alert, scored_chat, store, survey_alert


def test_the_alert_list_filters_by_kind_and_refuses_an_unknown_one(
        live: LiveDashboard, http: httpx.Client) -> None:
    customer_id = f"C-{uuid.uuid4().hex[:10]}"
    negative = negative_alert(customer_id, chat_id=f"CH-{uuid.uuid4().hex[:6]}")
    survey = survey_alert(customer_id, linked_alert_id=negative["alert_id"])
    store(live.settings, alerts=[negative, survey])
    ours = {negative["alert_id"], survey["alert_id"]}

    def listed(query: str) -> list[dict]:
        reply = http.get(f"/api/alerts?limit=500{query}", headers=live.headers("advisor"))
        assert reply.status_code == 200, reply.text
        return [a for a in reply.json()["alerts"] if a["alert_id"] in ours]

    assert {a["alert_id"] for a in listed("")} == ours
    [only] = listed("&kind=negative_interaction&status=open")
    assert only["alert_id"] == negative["alert_id"]
    assert [s["rule"] for s in only["signals"]] == ["escalation_language", "repeat_contact",
                                                    "negative_sentiment"]
    assert only["score"] is None and only["intent"] == "billing"
    [other] = listed("&kind=bottom_2_box")
    assert other["alert_id"] == survey["alert_id"]
    assert other["linked_alert_id"] == negative["alert_id"]

    wrong = http.get("/api/alerts?kind=angry", headers=live.headers("advisor"))
    assert wrong.status_code == 400
    assert wrong.json()["message"] == ("kind='angry': expected one of bottom_2_box, "
                                       "negative_interaction")


def test_the_context_says_why_a_customer_is_at_risk_and_nothing_for_a_happy_one(
        live: LiveDashboard, http: httpx.Client) -> None:
    unhappy, happy = (f"C-{uuid.uuid4().hex[:10]}" for _ in range(2))
    negative = negative_alert(unhappy, chat_id=f"CH-{uuid.uuid4().hex[:6]}")
    store(live.settings, alerts=[negative], entries=[
        scored_chat(unhappy, hours_ago=2, score=-0.74, label="negative",
                    text="This is the third time, I am furious"),
        scored_chat(happy, hours_ago=1, score=0.8, label="positive", text="Thanks, great help"),
    ])
    reply = http.get(f"/api/customers/{unhappy}/context", headers=live.headers("agent"))
    assert reply.status_code == 200, reply.text
    risk = reply.json()["at_risk"]
    assert risk["reasons"] == [
        "Open negative-interaction alert: said 'ombudsman' on chat, "
        "3rd contact about billing, negative words on chat (-0.81)",
        "Negative chat 2 h ago (-0.74)"]
    assert [a["alert_id"] for a in risk["open_alerts"]] == [negative["alert_id"]]
    assert reply.json()["open_alerts"][0]["kind"] == "negative_interaction"

    calm = http.get(f"/api/customers/{happy}/context", headers=live.headers("agent"))
    assert calm.status_code == 200 and calm.json()["at_risk"] is None
