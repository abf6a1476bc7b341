"""The customer's own page (/me) in real headless Chromium (Debian's) against the real
stack: notes added and deleted, preferences set, each travelling as an event through
cx.self-service.v1 and the worker before the page shows it; markup in a note shown as
text; refusals shown next to their field; the download of everything held.

Screenshots are kept in CXT_TEST_ARTIFACTS (default test-artifacts/), me-*.png.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from cxt.localstack import LocalStack
from kernel.settings import WriteRate
from tests.conftest import LiveDashboard, running_dashboard
from tests.support.browser import ARTIFACTS, checked_page, chromium, off_loop, screenshot
from tests.support.helpers import produce

CUSTOMER = f"C-{uuid.uuid4().hex[:10]}"
HOLDERS = {"customer": ("customer", CUSTOMER), "service": ("service", "test-suite")}
NAME = "Ada Lovelace"
# Markup and script in a note: it must show as these characters, never run.
HOSTILE_NOTE = ('<script>window.__owned = 1</script><img src=x onerror="window.__owned = 2">'
                ' <b>not bold</b> & 5 < 6')
# Every test's writes with the one token fit a burst (the limit itself is tested in
# test_self_service_api.py).
RATE = WriteRate(600, 60, 100)
SAVED_OR_SHOWN = re.compile(r"^Saved( \u2014 it appears in a moment)?\.$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # A refused write is a 4xx the browser logs as a failed resource: expected here.
    with checked_page(browser, timezone_id="Europe/Warsaw",
                      expected_errors=("Failed to load resource",)) as checked:
        yield checked


@pytest.fixture(scope="module")
def live_dashboard(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[LiveDashboard]:
    """A worker and dashboard with a customer token for CUSTOMER, whose record is stored."""
    with running_dashboard(stack, tmp_path_factory, HOLDERS,
                           self_service_write_rate=RATE) as live:
        record = {"customer_id": CUSTOMER, "name": NAME, "segment": "consumer"}
        off_loop(produce(live.settings, live.settings.topics.customers,
                         [(CUSTOMER.encode(), orjson.dumps(record))]))
        with httpx.Client(base_url=live.url, timeout=30) as client:
            deadline = time.monotonic() + 30
            while client.get("/api/me", headers=live.headers("customer")).json().get(
                    "name") != NAME:
                assert time.monotonic() < deadline, live.worker.log()
                time.sleep(0.2)
        yield live


def _open(page: Page, live: LiveDashboard) -> None:
    page.goto(f"{live.url}/me#token={live.tokens['customer']}")
    expect(page.locator("#me-title")).to_have_text(f"Hello, {NAME}", timeout=15_000)
    assert "token" not in page.url  # the token left the address bar


def _add_note(page: Page, text: str) -> None:
    page.fill("#note-text", text)
    with page.expect_response(lambda r: r.url.endswith("/api/me/notes")
                              and r.request.method == "POST") as answer:
        page.click("#note-add")
    assert answer.value.status == 202, answer.value.text()
    note_id = answer.value.json()["note_id"]
    expect(page.locator("#note-status")).to_have_text(SAVED_OR_SHOWN)
    expect(page.locator(f'#notes .note[data-note-id="{note_id}"]')).to_be_visible(timeout=20_000)
    expect(page.locator("#note-status")).to_have_text("Saved.")


def test_a_customer_adds_notes_sets_preferences_and_sees_them(
        live_dashboard: LiveDashboard, page: Page) -> None:
    live = live_dashboard
    _open(page, live)
    expect(page.locator("#notes")).to_contain_text("No notes yet.")
    expect(page.locator("#prefs-now")).to_contain_text("You have not set any preferences yet.")
    # Never chosen: the zone is this device's (the browser runs in Warsaw).
    expect(page.locator("#pref-zone")).to_have_value("Europe/Warsaw")
    screenshot(page, "me-empty.png")

    first = "Please call after 6pm \u2014 I work shifts.\nThe meter is in the cellar."
    page.fill("#note-text", first)
    expect(page.locator("#note-count")).to_have_text(f"{len(first)} / 2000")
    _add_note(page, first)
    _add_note(page, HOSTILE_NOTE)
    notes = page.locator("#notes .note")
    expect(notes).to_have_count(2)
    expect(notes.first.locator(".note-text")).to_have_text(HOSTILE_NOTE)  # newest first
    expect(notes.nth(1).locator(".note-text")).to_have_text(first)
    assert page.locator("#notes script, #notes img, #notes b").count() == 0
    assert page.evaluate("() => window.__owned") is None

    # Preferences: every field of the form.
    page.select_option("#pref-channel", "email")
    page.check("#hours-set")
    page.fill("#pref-from", "08:30")
    page.fill("#pref-to", "18:00")
    page.uncheck('input[name="day"][value="fri"]')
    page.select_option("#pref-zone", "Europe/London")
    page.select_option("#pref-language", "pl")
    page.fill("#pref-access", "Large print letters, please")
    expect(page.locator("#access-count")).to_have_text("27 / 500")
    page.check("#pref-no-offers")
    with page.expect_response(lambda r: r.url.endswith("/api/me/preferences")
                              and r.request.method == "PUT") as answer:
        page.click("#prefs-save")
    assert answer.value.status == 202, answer.value.text()
    sent = answer.value.request.post_data_json
    assert sent == {"preferred_channel": "email",
                    "contact_hours": {"from": "08:30", "to": "18:00",
                                      "days": ["mon", "tue", "wed", "thu"]},
                    "time_zone": "Europe/London", "language": "pl",
                    "accessibility_needs": "Large print letters, please",
                    "no_sales_offers": True}
    expect(page.locator("#prefs-status")).to_have_text("Saved.", timeout=20_000)
    summary = page.locator("#prefs-now")
    expect(summary.locator('dd[data-pref="preferred_channel"]')).to_have_text("E-mail")
    expect(summary.locator('dd[data-pref="contact_hours"]')).to_have_text(
        "Mon\u2013Thu 08:30\u201318:00 (Europe/London)")
    expect(summary.locator('dd[data-pref="time_zone"]')).to_have_text("Europe/London")
    expect(summary.locator('dd[data-pref="language"]')).to_have_text("Polish (pl)")
    expect(summary.locator('dd[data-pref="accessibility_needs"]')).to_have_text(
        "Large print letters, please")
    expect(summary.locator('dd[data-pref="no_sales_offers"]')).to_have_text(
        "No sales offers, please")
    screenshot(page, "me-filled.png")

    # What the customer set is what the agent sees, and offers are held back.
    with httpx.Client(base_url=live.url, timeout=30, headers=live.headers("service")) as http:
        context = http.get(f"/api/customers/{CUSTOMER}/context").json()
    assert [n["text"] for n in context["notes"]] == [HOSTILE_NOTE, first]
    assert context["preferences"]["language"] == "pl"
    assert context["contact_hours_now"]["hours_text"] == \
        "Mon\u2013Thu 08:30\u201318:00 Europe/London"

    # A reload shows the stored preferences in the form.
    page.reload()
    expect(page.locator("#me-title")).to_have_text(f"Hello, {NAME}", timeout=15_000)
    expect(page.locator("#pref-channel")).to_have_value("email")
    expect(page.locator("#hours-set")).to_be_checked()
    expect(page.locator("#pref-from")).to_have_value("08:30")
    expect(page.locator('input[name="day"][value="fri"]')).not_to_be_checked()
    expect(page.locator("#pref-zone")).to_have_value("Europe/London")
    expect(page.locator("#pref-no-offers")).to_be_checked()

    # Delete the older note.
    older = page.locator("#notes .note", has_text="I work shifts")
    older.locator(".note-delete").click()
    expect(page.locator("#note-status")).to_have_text("Deleted.", timeout=20_000)
    expect(page.locator("#notes .note")).to_have_count(1)
    expect(page.locator("#notes .note-text")).to_have_text(HOSTILE_NOTE)


def test_refusals_are_shown_next_to_their_field(live_dashboard: LiveDashboard,
                                                page: Page) -> None:
    live = live_dashboard
    _open(page, live)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.method in ("POST", "PUT") else None)

    # A note over the limit: the counter turns red and the page says so, sending nothing.
    page.fill("#note-text", "x" * 2001)
    counter = page.locator("#note-count")
    expect(counter).to_have_text("2001 / 2000")
    expect(counter).to_have_class(re.compile(r"\bover\b"))
    page.click("#note-add")
    error = page.locator('#note-form .field-error[data-error-for="text"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("at most 2000 characters; this one is 2001")
    expect(page.locator("#note-text")).to_have_attribute("aria-invalid", "true")
    assert not sent

    # A time zone only the service can refuse: its message, next to the zone.
    page.select_option("#pref-zone", "__other")
    expect(page.locator("#pref-zone-other")).to_be_visible()
    page.fill("#pref-zone-other", "Mars/Olympus_Mons")
    with page.expect_response(lambda r: r.url.endswith("/api/me/preferences")) as answer:
        page.click("#prefs-save")
    assert answer.value.status == 422, answer.value.text()
    zone_error = page.locator('#prefs-form .field-error[data-error-for="time_zone"]')
    expect(zone_error).to_be_visible()
    expect(zone_error).to_have_text(answer.value.json()["message"])
    assert answer.value.json()["message"].startswith("time_zone")
    expect(page.locator("#prefs-status")).to_have_text("Not saved.")
    expect(page.locator('#prefs-form .field-error[data-error-for="form"]')).to_be_hidden()

    # Hours whose start is their end: refused, shown by the hours.
    page.select_option("#pref-zone", "Europe/London")
    page.check("#hours-set")
    page.fill("#pref-from", "09:00")
    page.fill("#pref-to", "09:00")
    with page.expect_response(lambda r: r.url.endswith("/api/me/preferences")) as answer:
        page.click("#prefs-save")
    assert answer.value.status == 422, answer.value.text()
    hours_error = page.locator('#prefs-form .field-error[data-error-for="contact_hours"]')
    expect(hours_error).to_be_visible()
    expect(zone_error).to_be_hidden()  # the earlier refusal is gone
    page.evaluate("() => window.scrollTo(0, 0)")  # a full-page shot with the bar on top
    screenshot(page, "me-errors.png")


def test_download_everything_held(live_dashboard: LiveDashboard, page: Page) -> None:
    live = live_dashboard
    text = f"export check {uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=live.url, timeout=30, headers=live.headers("customer")) as http:
        assert http.post("/api/me/notes", json={"text": text}).status_code == 202
        deadline = time.monotonic() + 20
        while text not in [n["text"] for n in http.get("/api/me").json()["notes"]]:
            assert time.monotonic() < deadline, live.worker.log()
            time.sleep(0.2)
    _open(page, live)
    with page.expect_download() as downloading:
        page.click("#export")
    download = downloading.value
    assert download.suggested_filename.endswith(".json"), download.suggested_filename
    path = ARTIFACTS / f"me-export-{CUSTOMER}.json"
    download.save_as(path)
    document = orjson.loads(path.read_bytes())
    assert document["customer_id"] == CUSTOMER
    assert document["profile"]["name"] == NAME
    assert text in [n["text"] for n in document["notes"]]
    expect(page.locator("#export-status")).to_contain_text("Downloaded")
    screenshot(page, "me-export.png")
