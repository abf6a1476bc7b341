"""The agent page in real headless Chromium (Debian's) against the real stack, and the
websocket refusals it relies on; the "Who is calling?" panel of a shared identifier; the
customer's own notes and preferences shown first, and the offers they hold back.

Screenshots are kept in CXT_TEST_ARTIFACTS (default test-artifacts/), agent-*.png and
who-is-calling*.png (the confirmed panel also in /tmp/who-is-calling.png).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from dashboard.live import close_reason
from tests.conftest import LiveDashboard
from tests.support.browser import ARTIFACTS, checked_page, chromium, iso, off_loop, screenshot
from tests.support.helpers import envelope, produce, produce_events
from tests.support.identity_data import household, store
from tests.support.own_words import note, preferences, seed_own_words

PHONE, EMAIL = "+447700900457", "grace.hopper.457@example.org"
MASKED_PHONE = "+44 \u2022\u2022\u2022\u2022 \u2022\u20220457"
MASKED_EMAIL = "g\u2022\u2022@example.org"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with checked_page(browser, expected_errors=("WebSocket connection",)) as checked:
        yield checked


@dataclass(frozen=True)
class Customer:
    customer_id: str
    call_started: dict
    call_ended: dict


def _stored(http: httpx.Client, live: LiveDashboard, customer_id: str, entries: int) -> None:
    """Until the record and `entries` timeline entries can be read back."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = http.get(f"/api/customers/{customer_id}/timeline",
                         headers=live.headers("service"))
        context = http.get(f"/api/customers/{customer_id}/context",
                           headers=live.headers("service"))
        if (reply.status_code == 200 and len(reply.json()["events"]) >= entries
                and context.json().get("customer") is not None):
            return
        time.sleep(0.2)
    raise AssertionError(f"{customer_id} was not stored within 30 s:\n{live.worker.log()}")


@pytest.fixture(scope="module")
def customer(live: LiveDashboard, http: httpx.Client) -> Customer:
    """A customer whose one prompt is the upsell (plan used 4%), with one call (started
    and ended) and a chat; the record has identifiers and CRM fields with units."""
    customer_id = f"C-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    started = envelope("call", customer_id, occurred_at=iso(now - timedelta(hours=2)),
                       event_type="call.started", call_id=f"call-{customer_id}",
                       intent="billing", queue="billing-uk", agent_id="A-013",
                       ivr_path=["main", "billing"])
    ended = envelope("call", customer_id,
                     occurred_at=iso(now - timedelta(hours=2) + timedelta(seconds=290)),
                     event_type="call.ended", call_id=f"call-{customer_id}", intent="billing",
                     queue="billing-uk", agent_id="A-013", handle_seconds=287,
                     outcome="resolved", transfers=0)
    chat = envelope("chat", customer_id, occurred_at=iso(now - timedelta(days=1)),
                    event_type="chat.ended", chat_id=f"chat-{customer_id}",
                    intent="technical", queue="tech-chat", agent_id="A-012",
                    outcome="resolved", handle_seconds=600)
    record = {"customer_id": customer_id, "name": "Grace Hopper",
              "identifiers": {"phones": [PHONE], "emails": [EMAIL]},
              "segment": "consumer", "plan": "plus", "region": "north_west",
              "customer_since": "2015-06-01", "lifetime_value_gbp": 1234.5,
              "marketing_consent": True, "plan_usage_pct": 4, "tenure_flag": "gold"}
    off_loop(produce(live.settings, live.settings.topics.customers,
                     [(customer_id.encode(), orjson.dumps(record))]))
    off_loop(produce_events(live.settings, [chat, started, ended]))
    _stored(http, live, customer_id, 3)
    return Customer(customer_id, started, ended)


def _open(page: Page, live: LiveDashboard, token: str = "agent") -> None:
    page.goto(f"{live.url}/agent?agent=A-007#token={live.tokens[token]}")


def _look_up(page: Page, customer_id: str, intent: str = "") -> None:
    page.fill("#lookup-customer", customer_id)
    page.fill("#lookup-intent", intent)
    page.click("#lookup-form button[type=submit]")
    expect(page.locator("#context")).to_have_attribute("data-customer-id", customer_id,
                                                       timeout=15_000)


# -- the page --------------------------------------------------------------------------


def test_lookup_without_intent_shows_no_null_and_one_row_per_call(
        live: LiveDashboard, page: Page, customer: Customer) -> None:
    _open(page, live)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    _look_up(page, customer.customer_id)
    contact = page.locator("#contact")
    expect(contact).to_contain_text("none given")
    assert "null" not in contact.inner_text()
    # Again from the "previous" list: still without an intent.
    page.locator(".previous-contact", has_text=customer.customer_id).click()
    expect(page.locator("body")).not_to_have_attribute("aria-busy", "true")
    assert "null" not in page.locator("#context").inner_text()

    events = page.locator("#events .event")
    expect(events).to_have_count(2)  # the call (two entries) and the chat
    call = page.locator(f'#events .event[data-event-id="{customer.call_ended["event_id"]}"]')
    expect(call.locator(".event-type")).to_have_text("call.started \u2192 call.ended")
    expect(call).to_contain_text("4 min 47 s")
    expect(call).to_contain_text("resolved")
    assert call.get_attribute("data-event-ids") == (
        f"{customer.call_ended['event_id']} {customer.call_started['event_id']}")
    expect(page.locator("#event-counts")).to_have_text("0 relevant of 2")
    screenshot(page, "agent-lookup-no-intent.png")


def test_crm_fields_have_labels_and_units_and_identifiers_are_masked(
        live: LiveDashboard, page: Page, customer: Customer) -> None:
    _open(page, live)
    _look_up(page, customer.customer_id)
    card = page.locator("#customer")
    expect(card.locator('dd[data-field="plan_usage_pct"]')).to_have_text("4%")
    expect(card.locator('dt[data-field="plan_usage_pct"]')).to_have_text("Plan usage")
    expect(card.locator('dd[data-field="lifetime_value_gbp"]')).to_have_text("\u00a31,234.50")
    expect(card.locator('dt[data-field="lifetime_value_gbp"]')).to_have_text("Lifetime value")
    expect(card.locator('dd[data-field="marketing_consent"]')).to_have_text("yes")
    expect(card.locator('dt[data-field="tenure_flag"]')).to_have_text("Tenure flag")
    text = card.inner_text()
    assert "lifetime value gbp" not in text.casefold() and "plan usage pct" not in text.casefold()
    identity = card.locator(".identity")
    expect(identity).to_contain_text(MASKED_PHONE)
    expect(identity).to_contain_text(MASKED_EMAIL)
    html = page.content()
    assert PHONE not in html and EMAIL not in html and "900457" not in html
    screenshot(page, "agent-crm-fields.png")


def test_an_upsell_alone_is_styled_as_an_offer_not_an_alarm(
        live: LiveDashboard, page: Page, customer: Customer) -> None:
    _open(page, live)
    _look_up(page, customer.customer_id)
    prompts = page.locator("#prompts .prompt")
    expect(prompts).to_have_count(1)
    offer = prompts.first
    expect(offer).to_have_attribute("data-rule", "plan-under-used")
    expect(offer).to_have_attribute("data-tone", "offer")
    expect(offer).to_contain_text("Offer")
    assert offer.get_attribute("role") is None  # not announced as an alert
    # Green, not the alarm red of an alert prompt (#fdecea).
    background = offer.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background == "rgb(237, 247, 238)", background
    offer.screenshot(path=str(ARTIFACTS / "agent-offer-prompt.png"))
    screenshot(page, "agent-offer-page.png")


def test_a_live_contact_after_a_survey_without_channel_reads_well(
        live: LiveDashboard, page: Page) -> None:
    customer_id = f"C-{uuid.uuid4().hex[:10]}"
    survey = envelope("survey", customer_id,
                      occurred_at=iso(datetime.now(UTC) - timedelta(days=1)),
                      survey_id="S-nochan", score=2, comment="nobody called back")
    record = {"customer_id": customer_id, "name": "Alan Turing", "plan": "basic"}
    off_loop(produce(live.settings, live.settings.topics.customers,
                     [(customer_id.encode(), orjson.dumps(record))]))
    off_loop(produce_events(live.settings, [survey]))
    _open(page, live)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    page.wait_for_timeout(3000)  # the survey stored before the call arrives
    call = envelope("call", customer_id, occurred_at=iso(datetime.now(UTC)),
                    event_type="call.started", call_id=f"call-{customer_id}",
                    intent="billing", agent_id="A-007", queue="billing-uk")
    off_loop(produce_events(live.settings, [call]))
    expect(page.locator("#customer")).to_contain_text("Alan Turing", timeout=15_000)
    top = page.locator("#prompts .prompt").first
    expect(top).to_have_attribute("data-tone", "alert")
    expect(top).to_contain_text("they scored a contact with us 2/5")
    assert "contact contact" not in top.inner_text()
    expect(page.locator("#contact .tag-intent")).to_have_text("billing")
    screenshot(page, "agent-live-contact.png")


def test_a_token_for_another_agent_shows_the_reason_and_stops_retrying(
        live: LiveDashboard, page: Page) -> None:
    attempts: list[str] = []
    page.on("websocket", lambda ws: attempts.append(ws.url))
    _open(page, live, token="other_agent")  # A-008's token on A-007's page
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "refused", timeout=15_000)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("this agent token belongs to A-008, not to A-007")
    expect(banner).to_contain_text("Open the URL printed by ./dev up")
    assert "[object" not in banner.inner_text()
    page.wait_for_timeout(4000)  # the first retries were due after 1 s and 2 s
    assert len(attempts) == 1, attempts
    expect(conn).to_have_attribute("data-state", "refused")
    assert "retry" not in conn.inner_text()
    expect(page.locator("#waiting")).to_contain_text("Live contacts are off")
    screenshot(page, "agent-refused-token.png")


# -- the websocket refusals -------------------------------------------------------------


def _ws(live: LiveDashboard, path: str) -> str:
    return f"ws://{live.settings.dashboard_host}:{live.settings.dashboard_port}{path}"


@pytest.mark.parametrize(("path", "who", "code", "reason"), [
    ("/ws/agents/A-007", "other_agent", 4403, "this agent token belongs to A-008, not to A-007"),
    ("/ws/agents/A-007", None, 4401, "this call needs a bearer token"),
    ("/ws/alerts", "agent", 4403, "token may not do this"),
    ("/ws/unknown", "agent", 4404, "no websocket at '/ws/unknown'"),
])
def test_a_close_reasons_client_is_told_why_in_the_close_frame(
        live: LiveDashboard, path: str, who: str | None, code: int, reason: str) -> None:
    protocols = ["cxt.v1", "cxt.close-reasons"]
    if who is not None:
        protocols.append(f"bearer.{live.tokens[who]}")
    with (connect(_ws(live, path), subprotocols=protocols,  # type: ignore[arg-type]
                  open_timeout=10) as ws,
          pytest.raises(ConnectionClosed) as closed):
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    assert reason in closed.value.rcvd.reason, closed.value.rcvd


def test_unknown_websocket_paths_get_404_with_a_reason(live: LiveDashboard) -> None:
    for path in ("/ws/unknown", "/ws/agents/A-007/extra", "/nothing"):
        with pytest.raises(InvalidStatus) as refused:
            connect(_ws(live, path), additional_headers=live.headers("service"),
                    open_timeout=10)
        response = refused.value.response
        assert response.status_code == 404, (path, response.status_code)
        body = orjson.loads(response.body or b"{}")
        assert body["error"] == "not_found" and repr(path) in body["message"], body
    # The routes that exist still refuse a wrong token with the HTTP status and JSON.
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws(live, "/ws/agents/A-007"), additional_headers=live.headers("other_agent"),
                open_timeout=10)
    assert refused.value.response.status_code == 403
    assert orjson.loads(refused.value.response.body or b"{}")["error"] == "forbidden"


def test_close_reason_fits_a_close_frame() -> None:
    assert close_reason("short") == "short"
    long = "\u00e9" * 100  # 200 bytes
    cut = close_reason(long)
    assert len(cut.encode()) <= 123 and cut.endswith("...") and cut.startswith("\u00e9" * 60)


# -- who is calling: a call on a landline two customers share ------------------------

# Looks like markup: it must show as these characters, not as bold text or an element.
ODD_NAME = "Ada <b>Lovelace</b> & <img src=x onerror=alert(1)>"


def test_a_call_on_a_shared_landline_asks_who_is_calling_and_confirm_files_it(
        live: LiveDashboard, page: Page, http: httpx.Client) -> None:
    house = household(name_a=ODD_NAME)
    store(live.settings, house.seed)
    page.goto(f"{live.url}/agent?agent=A-007#token={live.tokens['agent']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    call = envelope("call", None, occurred_at=iso(datetime.now(UTC)), event_type="call.started",
                    identity={"phone": house.phone}, call_id=f"call-{house.a}",
                    intent="billing", agent_id="A-007", queue="billing-uk")
    off_loop(produce_events(live.settings, [call]))

    panel = page.locator("#who-is-calling")
    expect(panel).to_be_visible(timeout=15_000)
    expect(page.locator("#context")).to_have_attribute("data-customer-id", house.profile)
    assert panel.get_attribute("data-event-id") == call["event_id"]  # the live contact
    candidates = panel.locator(".who-candidate")
    expect(candidates).to_have_count(2)
    first = panel.locator(f'.who-candidate[data-customer-id="{house.a}"]')
    expect(first.locator(".who-name")).to_have_text(ODD_NAME)  # text, not markup
    assert first.locator("b, img").count() == 0
    expect(panel.locator(f'.who-candidate[data-customer-id="{house.b}"] .who-name')
           ).to_have_text("Byron Lovelace")
    expect(page.locator("#customer")).to_contain_text("confirm who is calling above")
    screenshot(page, "who-is-calling.png")

    with page.expect_response(lambda r: r.url.endswith("/api/identity/confirm")) as answer:
        first.locator(".who-confirm").click()
    assert answer.value.status == 202, answer.value.text()
    assert answer.value.json()["customer_id"] == house.a
    expect(page.locator("#who-status")).to_have_text(
        f"Confirmed: this contact is being filed under {house.a}.")
    expect(panel).to_have_attribute("data-confirmed", house.a)
    expect(first).to_have_class("who-candidate confirmed")
    assert all(b.is_disabled() for b in panel.locator(".who-confirm").all())
    shutil.copy(screenshot(page, "who-is-calling-confirmed.png"), "/tmp/who-is-calling.png")

    deadline = time.monotonic() + 15  # and the worker filed it under the customer
    while time.monotonic() < deadline:
        events = http.get(f"/api/customers/{house.a}/timeline",
                          headers=live.headers("service")).json()["events"]
        if any(e["event_id"] == call["event_id"] for e in events):
            return
        time.sleep(0.2)
    raise AssertionError(f"the confirmed call did not reach {house.a}:\n{live.worker.log()}")


# -- in their own words: notes and preferences first, offers held back -------------------

# Markup and script in a customer's note: it must show as these characters, never run.
HOSTILE_NOTE = ('<script>window.__owned = 1</script><img src=x onerror="window.__owned = 2">'
                ' <b>not bold</b> & call me after 6')


def test_the_customers_notes_and_preferences_come_first_and_offers_are_held_back(
        live: LiveDashboard, page: Page, http: httpx.Client) -> None:
    customer_id = f"C-{uuid.uuid4().hex[:10]}"
    record = {"customer_id": customer_id, "name": "Maria Kowalska", "plan": "plus",
              "segment": "consumer", "plan_usage_pct": 4}  # the upsell would speak
    call = envelope("call", customer_id, occurred_at=iso(datetime.now(UTC) - timedelta(days=3)),
                    event_type="call.ended", call_id=f"call-{customer_id}", intent="billing",
                    queue="billing-uk", agent_id="A-013", handle_seconds=200, outcome="resolved")
    off_loop(produce(live.settings, live.settings.topics.customers,
                     [(customer_id.encode(), orjson.dumps(record))]))
    off_loop(produce_events(live.settings, [call]))
    _stored(http, live, customer_id, 1)
    notes = [note("I have sent the meter reading twice already.", days_ago=9),
             note(HOSTILE_NOTE, days_ago=2),
             note("Line 1 of my note\nLine 2 stays on its own line", days_ago=1)]
    prefs = preferences(preferred_channel="email", language="pl", time_zone="Europe/London",
                        contact_hours={"from": "09:00", "to": "17:30",
                                       "days": ["mon", "tue", "wed", "thu", "fri"]},
                        accessibility_needs="Hard of hearing: please speak slowly",
                        no_sales_offers=True)
    seed_own_words(live.settings, customer_id, notes=notes, prefs=prefs)
    context = http.get(f"/api/customers/{customer_id}/context",
                       headers=live.headers("agent")).json()
    assert [n["note_id"] for n in context["notes"]] == [n["note_id"] for n in notes[::-1]]
    assert [p["rule"] for p in context["prompts_held_back"]] == ["plan-under-used"]

    _open(page, live)
    _look_up(page, customer_id)
    own = page.locator("#own-words")
    expect(own).to_be_visible()
    expect(own).to_have_attribute("data-notes", "3")
    # First: above the prompts and the history.
    own_box, events_box = own.bounding_box(), page.locator("#events").bounding_box()
    prompts_box = page.locator("#prompts").bounding_box()
    assert own_box and events_box and prompts_box
    assert own_box["y"] + own_box["height"] <= min(events_box["y"], prompts_box["y"])

    prefs_box = page.locator("#own-preferences")
    expect(prefs_box.locator('dd[data-pref="preferred_channel"]')).to_have_text("E-mail")
    expect(prefs_box.locator('dd[data-pref="language"]')).to_have_text("Polish (pl)")
    expect(prefs_box.locator('dd[data-pref="accessibility_needs"]')).to_have_text(
        "Hard of hearing: please speak slowly")
    expect(prefs_box.locator('dd[data-pref="no_sales_offers"]')).to_have_text(
        "No sales offers, please")
    hours = prefs_box.locator('dd[data-pref="contact_hours"]')
    expect(hours).to_contain_text("Mon\u2013Fri 09:00\u201317:30 Europe/London")
    status = context["contact_hours_now"]["status"]
    expect(hours.locator(".hours-status")).to_have_attribute("data-status", status)
    expect(hours).to_contain_text("Inside their hours now" if status == "inside"
                                  else "Outside their hours \u2014 next window opens")
    expect(prefs_box.locator('dd[data-pref="local_time"]')).to_contain_text(
        context["contact_hours_now"]["local_text"])

    # Notes newest first with their dates; markup shows as text and never runs.
    items = page.locator("#own-notes .note")
    expect(items).to_have_count(3)
    expect(items.nth(1).locator(".note-text")).to_have_text(HOSTILE_NOTE)
    expect(items.nth(2).locator(".note-text")).to_have_text(notes[0]["text"])
    assert page.locator("#own-notes script, #own-notes img, #own-notes b").count() == 0
    assert page.evaluate("() => window.__owned") is None
    expect(items.first.locator(".note-when time")).to_have_attribute(
        "datetime", notes[2]["added_at"])
    line_box = items.first.locator(".note-text").bounding_box()
    assert line_box and line_box["height"] > 30  # two lines: the line break is kept

    # Prompts obey the preferences: no offer, the held-back one named, channel and language.
    expect(page.locator('#prompts .prompt[data-tone="offer"]')).to_have_count(0)
    held = page.locator("#prompts-held-back .held-back-item")
    expect(held).to_have_count(1)
    expect(held).to_have_attribute("data-rule", "plan-under-used")
    expect(held).to_contain_text("asked for no sales offers")
    expect(page.locator('#prompts .prompt[data-rule="preferred-channel"]')).to_contain_text(
        "They prefer e-mail")
    expect(page.locator('#prompts .prompt[data-rule="preferred-language"]')).to_contain_text(
        "They prefer Polish (pl)")
    expect(page.locator('#prompts .prompt[data-rule="accessibility-needs"]')).to_contain_text(
        "Hard of hearing: please speak slowly")
    shutil.copy(screenshot(page, "agent-own-words.png"), "/tmp/agent-own-words.png")


def test_a_customer_who_told_us_nothing_gets_a_quiet_own_words_card(
        live: LiveDashboard, page: Page, customer: Customer) -> None:
    _open(page, live)
    _look_up(page, customer.customer_id)
    own = page.locator("#own-words")
    expect(own).to_have_attribute("data-preferences", "none")
    expect(own).to_contain_text("No preferences set.")
    expect(own).to_contain_text("No notes from the customer.")
    expect(own.locator("dd")).to_have_count(0)
    expect(page.locator("#prompts-held-back")).to_be_hidden()
