"""The customer's own routes, /api/me/*, end to end: a customer token writes notes and
preferences through the API, the worker applies them from cx.self-service.v1, and the
API reads them back; bad input answers 4xx naming the field; writes are rate-limited per
token; and a customer token reaches nothing of anyone else: not through any route of
dashboard/openapi.json, not through either websocket, not through parameters."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from cxt.localstack import LocalStack
from kernel.settings import WriteRate
from tests.conftest import LiveDashboard, running_dashboard
from tests.support.helpers import REPO, b2b_survey, envelope, eventually, produce, produce_events

SPEC = json.loads((REPO / "dashboard" / "openapi.json").read_text())
TAG = uuid.uuid4().hex[:6]
ME, OTHER, MERGED = f"C-me-{TAG}", f"C-other-{TAG}", f"C-merged-{TAG}"
HOLDERS = {"advisor": ("advisor", "adv-ana"), "service": ("service", "test-suite"),
           "agent": ("agent", "A-007"), "me": ("customer", ME), "other": ("customer", OTHER),
           "bad": ("customer", f"C-bad-{TAG}"), "limited": ("customer", f"C-lim-{TAG}"),
           "merged": ("customer", MERGED)}
# A burst of 30 (every test's writes fit one token's burst), then one a second.
RATE = WriteRate(60, 60, 30)
PREFERENCES = {"preferred_channel": "email",
               "contact_hours": {"from": "22:00", "to": "06:00", "days": ["sat", "sun"]},
               "time_zone": "America/New_York", "language": "pt-BR",
               "accessibility_needs": "hard of hearing", "no_sales_offers": True}


@pytest.fixture(scope="module")
def live(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[LiveDashboard]:
    with running_dashboard(stack, tmp_path_factory, HOLDERS,
                           self_service_write_rate=RATE) as dashboard:
        settings = dashboard.settings
        asyncio.run(produce(settings, settings.topics.customers, [
            (cid.encode(), orjson.dumps(record)) for cid, record in (
                (ME, {"customer_id": ME, "name": "Mia Example"}),
                (OTHER, {"customer_id": OTHER, "name": "Otto Other"}),
                (MERGED, {"customer_id": MERGED, "merged_into": OTHER}))]))
        yield dashboard


def _wait(check: Callable[[], object], timeout: float = 30) -> object:
    return asyncio.run(eventually(check, timeout=timeout, interval=0.2))


def _ok(reply: httpx.Response, status: int = 200) -> dict:
    assert reply.status_code == status, (reply.status_code, reply.text)
    return reply.json()


def _error(reply: httpx.Response, status: int, code: str) -> str:
    assert reply.status_code == status, (reply.status_code, reply.text)
    body = reply.json()
    assert set(body) == {"error", "message"} and body["error"] == code, body
    return body["message"]


def test_notes_and_preferences_through_the_api_and_the_stream(
        live: LiveDashboard, http: httpx.Client) -> None:
    me = live.headers("me")
    assert _wait(lambda: http.get("/api/me", headers=me).json().get("name") == "Mia Example")
    assert _ok(http.get("/api/me", headers=me)) == {
        "customer_id": ME, "name": "Mia Example", "preferences": None, "notes": []}

    html = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    added = _ok(http.post("/api/me/notes", headers=me, json={"text": html}), 202)
    assert added["status"] == "accepted" and added["note_id"] and added["event_id"]
    second = _ok(http.post("/api/me/notes", headers=me, json={"text": "Ring after 6pm"}), 202)
    set_ = _ok(http.put("/api/me/preferences", headers=me, json=PREFERENCES), 202)
    assert set_["preferences"] == PREFERENCES

    def applied() -> bool:
        body = http.get("/api/me", headers=me).json()
        return len(body["notes"]) == 2 and body["preferences"] is not None

    assert _wait(applied), live.worker.log()
    body = _ok(http.get("/api/me", headers=me))
    assert [n["text"] for n in body["notes"]] == ["Ring after 6pm", html]  # newest first
    assert {"note_id", "text", "added_at"} <= set(body["notes"][0])
    assert body["preferences"] == {**PREFERENCES, "set_at": body["preferences"]["set_at"]}
    assert _ok(http.get("/api/me/preferences", headers=me))["preferences"] == body["preferences"]
    assert _ok(http.get("/api/me/notes", headers=me))["notes"] == body["notes"]

    # Fields left out of a PUT are unset.
    _ok(http.put("/api/me/preferences", headers=me, json={"language": "cy"}), 202)
    assert _wait(lambda: (http.get("/api/me/preferences", headers=me).json()["preferences"]
                          or {}).get("language") == "cy")
    prefs = _ok(http.get("/api/me/preferences", headers=me))["preferences"]
    assert prefs["contact_hours"] is None and prefs["no_sales_offers"] is False

    gone = _ok(http.delete(f"/api/me/notes/{added['note_id']}", headers=me), 202)
    assert gone["note_id"] == added["note_id"]
    assert _wait(lambda: [n["note_id"] for n in http.get("/api/me/notes", headers=me)
                          .json()["notes"]] == [second["note_id"]])
    _error(http.delete(f"/api/me/notes/{added['note_id']}", headers=me), 404, "not_found")
    _error(http.delete("/api/me/notes/never-there", headers=me), 404, "not_found")

    # Their timeline holds every change, as channel `account`.
    page = _ok(http.get("/api/me/timeline", headers=me, params={"channel": "account"}))
    assert page["customer_id"] == ME and page["next"] is None
    assert sorted(e["type"] for e in page["events"]) == sorted(
        ["account.note_added"] * 2 + ["account.preferences_set"] * 2 + ["account.note_deleted"])
    assert all(e["actor"] == f"customer:{ME}" for e in page["events"])
    one = _ok(http.get("/api/me/timeline", headers=me, params={"limit": 1}))
    assert len(one["events"]) == 1 and one["next"]
    rest = _ok(http.get("/api/me/timeline", headers=me, params={"before": one["next"]}))
    assert len(rest["events"]) == 4
    # Staff see the same through their routes.
    staff = _ok(http.get(f"/api/customers/{ME}/timeline", headers=live.headers("advisor")))
    assert len(staff["events"]) == 5


def test_the_customer_sees_their_alerts_without_the_staff(
        live: LiveDashboard, http: httpx.Client) -> None:
    me, advisor = live.headers("me"), live.headers("advisor")
    survey = b2b_survey(ME, f"rude agent {TAG}")
    asyncio.run(produce_events(live.settings, [survey]))
    assert _wait(lambda: http.get("/api/me/alerts", headers=me).json()["alerts"]), (
        live.worker.log())
    (alert,) = _ok(http.get("/api/me/alerts", headers=me))["alerts"]
    _ok(http.post(f"/api/alerts/{alert['alert_id']}/ack", headers=advisor,
                  json={"note": "adv-ana will call"}))
    (alert,) = _ok(http.get("/api/me/alerts", headers=me))["alerts"]
    assert alert["status"] == "acknowledged" and alert["kind"] == "bottom_2_box"
    assert alert["survey"]["score"] == 1 and alert["survey"]["comment"] == f"rude agent {TAG}"
    assert [step["event"] for step in alert["history"]] == ["raised", "acknowledged"]
    text = json.dumps(alert)
    for staff in ("adv-ana", "A-007", "billing-uk", "will call"):
        assert staff not in text, (staff, alert)


def test_a_customer_token_reaches_nothing_of_anyone_else(
        live: LiveDashboard, http: httpx.Client) -> None:
    me, other = live.headers("me"), live.headers("other")
    secret = f"other's secret {uuid.uuid4().hex}"
    note = _ok(http.post("/api/me/notes", headers=other, json={"text": secret}), 202)
    _ok(http.put("/api/me/preferences", headers=other,
                 json={**PREFERENCES, "accessibility_needs": secret}), 202)
    asyncio.run(produce_events(live.settings, [
        envelope("chat", OTHER, event_type="chat.ended", transcript_excerpt=secret),
        b2b_survey(OTHER, secret)]))
    assert _wait(lambda: len(http.get(f"/api/customers/{OTHER}/timeline",
                                      headers=live.headers("advisor")).json()["events"]) >= 4
                 and http.get("/api/me/alerts", headers=other).json()["alerts"]), (
        live.worker.log())

    # The customer id comes from the token only: a parameter naming another is refused.
    for path in ("/api/me", "/api/me/timeline", "/api/me/notes", "/api/me/alerts",
                 "/api/me/preferences", "/api/me/export"):
        for params in ({"customer_id": OTHER}, {"customer": OTHER}, {"id": OTHER}):
            _error(http.get(path, headers=me, params=params), 400, "bad_request")
        reply = http.get(path, headers=me)
        assert reply.status_code == 200 and secret not in reply.text and OTHER not in reply.text
    # Another customer's note cannot be deleted, nor a body point elsewhere.
    _error(http.delete(f"/api/me/notes/{note['note_id']}", headers=me), 404, "not_found")
    _error(http.post("/api/me/notes", headers=me, json={"text": "x", "customer_id": OTHER}),
           422, "invalid_body")
    _error(http.put("/api/me/preferences", headers=me, json={"customer_id": OTHER}),
           422, "invalid_body")
    assert _wait(lambda: secret in http.get("/api/me/notes", headers=other).text)

    # Every other route of the API refuses the customer token, whatever the ids.
    samples = {"customer_id": OTHER, "alert_id": "AL-x", "agent_id": "A-007",
               "note_id": note["note_id"]}
    for path, item in SPEC["paths"].items():
        for method in item:
            url = path.format(**samples)
            reply = http.request(method.upper(), url, headers=me, json={})
            if path == "/api/me" or path.startswith("/api/me/"):
                assert reply.status_code not in (401, 403), (method, url, reply.text)
                assert secret not in reply.text, (method, url)
            else:
                _error(reply, 403, "forbidden")
    for path in ("/ws/alerts", "/ws/agents/A-007"):
        url = f"ws://{live.settings.dashboard_host}:{live.settings.dashboard_port}{path}"
        with pytest.raises(InvalidStatus) as refused, connect(
                url, subprotocols=["cxt.v1", f"bearer.{live.tokens['me']}"],  # type: ignore[list-item]
                open_timeout=10):
            pass
        assert refused.value.response.status_code == 403
    # The note of `other` survived everything `me` tried.
    assert secret in _ok(http.get("/api/me/notes", headers=other))["notes"][0]["text"]


def test_bad_input_is_a_4xx_naming_the_field(live: LiveDashboard, http: httpx.Client) -> None:
    bad = live.headers("bad")

    def post(body: bytes, content_type: str = "application/json") -> httpx.Response:
        return http.post("/api/me/notes", headers={**bad, "Content-Type": content_type},
                         content=body)

    _error(post(b'{"text": "x"}', "text/plain"), 415, "unsupported_media_type")
    _error(post(b'{"text": "x"}', "application/x-www-form-urlencoded"), 415,
           "unsupported_media_type")
    _error(post(b'{"text": "' + b"x" * 9000 + b'"}'), 413, "too_large")
    _error(post(b""), 400, "bad_request")
    _error(post(b"{"), 400, "bad_request")
    _error(post(b"[]"), 422, "invalid_body")
    assert _error(post(b'{"txt": "x"}'), 422, "invalid_body").startswith("txt: unknown field")
    assert _error(post(orjson.dumps({"text": "x" * 2001})), 422, "invalid_body").startswith(
        "text: must be shorter than or equal to 2000")
    assert _error(post(b'{"text": "   "}'), 422, "invalid_body").startswith("text: must contain")
    assert _error(post(b'{"text": 7}'), 422, "invalid_body").startswith("text:")
    assert _error(post(b"{}"), 422, "invalid_body").startswith("text: is required")

    def put(body: dict) -> str:
        return _error(http.put("/api/me/preferences", headers=bad, json=body), 422,
                      "invalid_body")

    assert put({**PREFERENCES, "time_zone": "Moon/Base"}).startswith("time_zone: 'Moon/Base'")
    assert put({"contact_hours": {"from": "9am", "to": "17:00", "days": ["mon"]}}).startswith(
        "contact_hours.from: must be a time HH:MM")
    assert put({"contact_hours": {"from": "09:00", "to": "09:00", "days": ["mon"]}}).startswith(
        "contact_hours.to: must differ")
    assert put({"contact_hours": {"from": "09:00", "to": "10:00",
                                  "days": ["mon", "mon"]}}).startswith("contact_hours.days:")
    assert put({"preferred_channel": "pigeon"}).startswith("preferred_channel: must be one of")
    assert put({"language": "English"}).startswith("language: must be a BCP 47")
    assert put({"no_sales_offers": "yes"}).startswith("no_sales_offers: must be boolean")
    assert put({"set_at": "now"}).startswith("set_at: unknown field")
    _error(http.delete("/api/me/notes/" + "n" * 300, headers=bad), 400, "bad_request")
    _error(http.delete("/api/me/notes/a%20b", headers=bad), 422, "invalid_body")
    # No write got through.
    time.sleep(1)
    assert _ok(http.get("/api/me", headers=bad))["notes"] == []


def test_writes_are_rate_limited_per_token(live: LiveDashboard, http: httpx.Client) -> None:
    limited = live.headers("limited")
    statuses = []
    for _ in range(RATE.burst + 5):
        reply = http.post("/api/me/notes", headers=limited, json={"text": "spam"})
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            break
    assert statuses[-1] == 429 and statuses.count(202) >= RATE.burst - 1, statuses
    assert re.fullmatch(r"[1-9][0-9]*", reply.headers["Retry-After"]), reply.headers
    assert "try again in" in _error(reply, 429, "rate_limited")
    # Reads are not limited; another token has its own bucket.
    _ok(http.get("/api/me", headers=limited))
    _ok(http.post("/api/me/notes", headers=live.headers("me"), json={"text": "mine"}), 202)
    time.sleep(int(reply.headers["Retry-After"]))
    _ok(http.post("/api/me/notes", headers=limited, json={"text": "later"}), 202)


def test_a_merged_customer_cannot_write_where_it_would_not_see_it(
        live: LiveDashboard, http: httpx.Client) -> None:
    merged = live.headers("merged")
    assert _wait(lambda: http.get(f"/api/customers/{MERGED}", headers=live.headers(
        "advisor")).json().get("merged_into") == OTHER), live.worker.log()
    assert "merged into another" in _error(
        http.post("/api/me/notes", headers=merged, json={"text": "hi"}), 409, "merged")
    assert "merged into another" in _error(
        http.put("/api/me/preferences", headers=merged, json={}), 409, "merged")
    _ok(http.get("/api/me", headers=merged))
