"""The advisory page in real headless Chromium (Debian's), against the real stack:
the live feed, the call-back panel (who to call, the customer's alerts grouped, one
action for all of them, when the customer wants to be called), the deadline column,
and times in UTC.

Screenshots are kept in CXT_TEST_ARTIFACTS (default test-artifacts/).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from cxt.localstack import LocalStack
from domain.contact_hours import contact_hours_now
from schemas.registry import load_schema
from tests.conftest import LiveDashboard, running_dashboard
from tests.support.browser import checked_page, chromium, iso, off_loop, screenshot
from tests.support.helpers import envelope, produce, produce_events
from tests.support.own_words import preferences, seed_own_words

T = TypeVar("T")

# Long enough that the tests on the module's dashboard act on their alerts well before
# these are due (and a deadline reads "in 1 min").
ACK_TIMEOUT_S = 40
# The overdue test's own dashboard: short, since that test waits for an escalation, yet
# long enough that the alert it raises after the escalation is still due when it sorts.
OVERDUE_ACK_TIMEOUT_S = 15
# Not UTC, so a time shown in the browser's zone would differ from the expected one.
BROWSER_ZONE = "America/New_York"
ADVISORY_HOLDERS = {"advisor": ("advisor", "adv-ana"), "service": ("service", "test-suite")}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with checked_page(browser, timezone_id=BROWSER_ZONE) as checked:
        yield checked


@pytest.fixture(scope="module")
def live_dashboard(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[LiveDashboard]:
    """conftest's live dashboard, with alerts that escalate after ACK_TIMEOUT_S."""
    with running_dashboard(stack, tmp_path_factory, ADVISORY_HOLDERS, escalation_check_s=1,
                           alert_ack_timeout_s=ACK_TIMEOUT_S) as live:
        yield live


@pytest.fixture
def overdue_dashboard(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[LiveDashboard]:
    """Like `live_dashboard`, with alerts that escalate after OVERDUE_ACK_TIMEOUT_S.

    Started once the module's browser runs, whose sync API owns this thread's event loop:
    so started on a thread of its own (running_dashboard creates topics with asyncio.run)."""
    with ExitStack() as started, ThreadPoolExecutor(1) as pool:
        yield pool.submit(started.enter_context, running_dashboard(
            stack, tmp_path_factory, ADVISORY_HOLDERS, escalation_check_s=1,
            alert_ack_timeout_s=OVERDUE_ACK_TIMEOUT_S)).result()


def _api(live: LiveDashboard) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=30, headers=live.headers("service"))


@pytest.fixture
def api(live_dashboard: LiveDashboard) -> Iterator[httpx.Client]:
    with _api(live_dashboard) as client:
        yield client


@pytest.fixture
def overdue_api(overdue_dashboard: LiveDashboard) -> Iterator[httpx.Client]:
    with _api(overdue_dashboard) as client:
        yield client


def _wait(check: Callable[[], T], timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def _survey(customer: str, *, score: int = 1, comment: str = "agent was rude",
            queue: str = "billing-uk", agent: str = "A-007") -> dict:
    return envelope("survey", customer, occurred_at=iso(datetime.now(UTC)),
                    survey_id=f"S-{uuid.uuid4().hex[:8]}", score=score, queue=queue,
                    agent_id=agent, comment=comment, reason_codes=["agent_attitude"])


def _alerts_of(api: httpx.Client, customer: str) -> list[dict]:
    listed = api.get("/api/alerts", params={"limit": 500}).json()["alerts"]
    return [a for a in listed if a["customer_id"] == customer]


def _open_page(live: LiveDashboard, page: Page, query: str = "") -> None:
    page.goto(f"{live.url}/advisory{query}#token={live.tokens['advisor']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)


def _row(page: Page, customer: str) -> Locator:
    return page.locator(f'#alerts tr[data-customer-id="{customer}"]')


def _utc(value: str, style: str) -> str:
    """What the page must show for `value`, in UTC whatever the browser's zone."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    clock = f"{moment:%H:%M} UTC"
    return clock if style == "time" else f"{moment.day} {MONTHS[moment.month - 1]} {clock}"


def _assert_inside(inner: Locator, outer: Locator) -> None:
    """`inner` is drawn within `outer`, not clipped away by it."""
    a, b = inner.bounding_box(), outer.bounding_box()
    assert a and b, (a, b)
    assert b["x"] <= a["x"] and a["x"] + a["width"] <= b["x"] + b["width"] + 1, (a, b)


def test_a_new_alert_appears_live_and_is_acknowledged(
        live_dashboard: LiveDashboard, page: Page) -> None:
    live = live_dashboard
    _open_page(live, page)
    assert "token" not in page.url  # the token left the address bar

    customer = _customer()
    off_loop(produce_events(live.settings, [_survey(customer)]))

    row = page.locator("[data-alert-id]", has_text=customer)
    expect(row).to_have_count(1, timeout=15_000)
    alert_id = row.get_attribute("data-alert-id")
    status = page.locator(f'[data-alert-id="{alert_id}"] .status')
    expect(status).to_have_text("open")

    row.click()
    expect(page.locator("#detail")).to_contain_text("agent was rude")
    page.locator("#ack").click()
    expect(status).to_have_text("acknowledged", timeout=20_000)
    # The charts redraw after a raised alert, now with this survey counted.
    for chart in ("chart-hourly", "chart-daily"):
        expect(page.locator(f"#{chart}")).to_be_visible()
        expect(page.locator(f'.chart-empty[data-for="{chart}"]')).to_be_hidden(timeout=15_000)
    expect(page.locator("#chart-hourly")).to_have_attribute("data-rows", "24")
    expect(page.locator("#chart-daily")).to_have_attribute("data-rows", "30")
    screenshot(page, "advisory.png")


def test_the_call_back_panel_groups_a_customers_alerts_and_says_who_to_call(
        live_dashboard: LiveDashboard, page: Page, api: httpx.Client) -> None:
    live = live_dashboard
    customer, other = _customer(), _customer()
    record = {"customer_id": customer, "name": "Grace Callback", "segment": "vip",
              "plan": "premium", "identifiers": {"phones": ["+447700900456"],
                                                 "emails": ["grace.callback@example.org"]}}
    off_loop(produce(live.settings, live.settings.topics.customers,
                     [(customer.encode(), orjson.dumps(record))]))
    _open_page(live, page)
    surveys = [_survey(customer, score=1, comment="agent was rude"),
               _survey(customer, score=2, comment="billing error still not fixed",
                       queue="billing-ie", agent="A-011"),
               _survey(customer, score=1, comment="nobody called me back"),
               _survey(other, score=2, comment="long wait")]
    off_loop(produce_events(live.settings, surveys))

    row = _row(page, customer)
    expect(row).to_have_attribute("data-count", "3", timeout=20_000)
    badge = row.locator(".group-count")
    expect(badge).to_have_text("3 alerts")
    _assert_inside(badge, row.locator("td.customer"))
    expect(_row(page, other)).to_have_attribute("data-count", "1")
    # One row per customer, whatever the number of alerts.
    expect(page.locator(f'#alerts tr[data-customer-id="{customer}"]')).to_have_count(1)

    # Times in UTC with the zone, in a browser set to New York.
    raised = row.locator("td.raised-at time")
    assert raised.inner_text() == _utc(raised.get_attribute("datetime") or "", "short")
    alerts = _alerts_of(api, customer)
    earliest = min(a["ack_deadline"] for a in alerts)
    deadline = row.locator(".col-deadline .deadline")
    expect(deadline).to_have_attribute("data-kind", "due")
    expect(deadline.locator(".deadline-at")).to_have_text(_utc(earliest, "time"))
    expect(deadline.locator(".deadline-left")).to_have_text("in 1 min")
    screenshot(page, "advisory-list-grouped.png")

    row.click()
    card = page.locator("#callback-card")
    expect(card).to_contain_text("Grace Callback")
    expect(card.locator(".cb-phone")).to_have_text("+447700900456")
    expect(card.locator(".cb-phone")).to_have_attribute("href", "tel:+447700900456")
    expect(card.locator(".cb-email")).to_have_text("grace.callback@example.org")
    expect(card).to_contain_text("premium plan")
    expect(page.locator("#customer-alerts .ca-item")).to_have_count(3)
    expect(page.locator("#act-all-row")).to_be_visible()
    expect(page.locator("#act-all")).to_be_checked()
    expect(page.locator("#actions-title")).to_have_text(
        "Act on all 3 open alerts of this customer")
    # The note box allows exactly what the API allows.
    limit = load_schema("alert-action.v1")["properties"]["note"]["maxLength"]
    expect(page.locator("#action-note")).to_have_attribute("maxlength", str(limit))

    # The list stays readable beside the panel: queue, agent and comment shown, not
    # hidden or under the panel.
    panel_left = page.locator("#detail").bounding_box()["x"]  # type: ignore[index]
    for cell in ("queue", "agent", "comment"):
        located = row.locator(f"td.{cell}")
        expect(located).to_be_visible()
        box = located.bounding_box()
        assert box and box["width"] > 30 and box["x"] + box["width"] <= panel_left + 1, cell
    newest = max(alerts, key=lambda a: (a["raised_at"], a["alert_id"]))
    expect(row.locator("td.comment")).to_have_text(newest["comment"])
    _assert_inside(badge, row.locator("td.customer"))
    screenshot(page, "advisory-callback-panel.png")

    # One call-back covers them: each action goes to all three alerts.
    page.locator("#action-note").fill("calling Grace now")
    page.locator("#ack").click()
    expect(page.locator("#action-ok")).to_have_text("Acknowledged 3 alerts.", timeout=30_000)
    expect(row.locator(".status")).to_have_text("acknowledged")
    expect(row.locator(".deadline-due")).to_have_count(0)  # no countdown once acknowledged
    page.locator("#callback-outcome").select_option("reached")
    page.locator("#callback").click()
    expect(page.locator("#action-ok")).to_have_text("Call-back recorded on 3 alerts.",
                                                    timeout=30_000)
    alerts = _alerts_of(api, customer)
    assert len(alerts) == 3
    assert all(a["status"] == "acknowledged" and a["acknowledged_by"] == "adv-ana"
               and len(a["callbacks"]) == 1 for a in alerts), alerts
    screenshot(page, "advisory-callback-done.png")


def test_overdue_alerts_are_marked_and_sort_first_and_resolved_ones_have_no_countdown(
        overdue_dashboard: LiveDashboard, page: Page, overdue_api: httpx.Client) -> None:
    live, api = overdue_dashboard, overdue_api
    late, done = _customer(), _customer()
    off_loop(produce_events(live.settings, [_survey(late, comment="still no refund"),
                                            _survey(done, comment="rude on the phone")]))
    assert _wait(lambda: [a for a in _alerts_of(api, late) if a["status"] == "escalated"],
                 timeout=OVERDUE_ACK_TIMEOUT_S + 40), live.worker.log()
    fresh = _customer()
    off_loop(produce_events(live.settings, [_survey(fresh, comment="cut off twice")]))

    _open_page(live, page, "?status=open,escalated,acknowledged,resolved")
    expect(_row(page, fresh)).to_have_count(1, timeout=20_000)
    expect(_row(page, fresh).locator(".deadline")).to_have_attribute("data-kind", "due")
    overdue = _row(page, late).locator(".deadline")
    expect(overdue).to_have_attribute("data-kind", "overdue")
    expect(overdue).to_have_class("deadline deadline-overdue")
    expect(overdue.locator(".deadline-left")).to_contain_text("overdue")
    _assert_inside(overdue, _row(page, late).locator(".col-deadline"))

    def order() -> list[str]:
        ids = page.locator("#alerts tr").evaluate_all("rows => rows.map(r => r.dataset.customerId)")
        return [i for i in ids if i in (late, fresh)]

    assert order() == [fresh, late]  # newest first by default
    page.locator('th[data-sort="deadline"] button').click()
    expect(page.locator('th[data-sort="deadline"]')).to_have_attribute("aria-sort", "ascending")
    assert order() == [late, fresh]  # the overdue one first
    assert "sort=deadline" in page.url
    screenshot(page, "advisory-sorted-by-deadline.png")

    # Acknowledge and resolve with another category from the panel.
    _row(page, done).click()
    expect(page.locator("#detail")).to_have_attribute("data-customer-id", done)
    page.locator("#ack").click()
    expect(page.locator("#detail")).to_have_attribute("data-status", "acknowledged",
                                                      timeout=30_000)
    before = _alerts_of(api, done)[0]
    new_category = "business_operations" if before["category"] != "business_operations" \
        else "skill"
    page.locator("#resolve-category").select_option(new_category)
    page.locator("#resolve").click()
    expect(page.locator("#detail")).to_have_attribute("data-status", "resolved",
                                                      timeout=30_000)
    expect(page.locator("#action-ok")).to_have_text("Resolved this alert.", timeout=30_000)
    sub = page.locator("#detail-sub")
    expect(sub).to_contain_text("resolved")
    expect(sub.locator(".deadline-due, .deadline-overdue")).to_have_count(0)
    expect(sub).not_to_contain_text("Ack by")
    expect(page.locator("#detail-body")).to_contain_text("set by adv-ana when resolving")
    expect(page.locator('#detail-body .history li[data-event="resolved"]')).to_contain_text(
        f"Re-categorised by adv-ana: {before['category'].replace('_', ' ')} → "
        f"{new_category.replace('_', ' ')}")
    expect(_row(page, done).locator(".col-deadline")).to_have_text("resolved")
    expect(page.locator("#resolve")).to_be_hidden()  # nothing left to do on it
    page.locator("#detail-body .history").scroll_into_view_if_needed()
    screenshot(page, "advisory-resolved-and-overdue.png")


def test_the_call_back_panel_says_when_the_customer_wants_to_be_called(
        live_dashboard: LiveDashboard, page: Page, api: httpx.Client) -> None:
    live = live_dashboard
    customer = _customer()
    zone = "Asia/Tokyo"  # neither the browser's zone nor UTC
    # A window every day that opens two hours from now, their time: outside it now.
    local = datetime.now(ZoneInfo(zone))
    opens, closes = local + timedelta(hours=2), local + timedelta(hours=3)
    prefs = preferences(preferred_channel="call", language="cy", time_zone=zone,
                        contact_hours={"from": f"{opens:%H:%M}", "to": f"{closes:%H:%M}",
                                       "days": ["mon", "tue", "wed", "thu", "fri", "sat",
                                                "sun"]})
    seed_own_words(live.settings, customer, prefs=prefs)
    record = {"customer_id": customer, "name": "Rhys Evans",
              "identifiers": {"phones": ["+447700900789"]}}
    off_loop(produce(live.settings, live.settings.topics.customers,
                     [(customer.encode(), orjson.dumps(record))]))
    _open_page(live, page)
    off_loop(produce_events(live.settings, [_survey(customer, comment="nobody rang back")]))
    row = _row(page, customer)
    expect(row).to_have_count(1, timeout=20_000)
    alert_id = row.get_attribute("data-alert-id")
    detail = api.get(f"/api/alerts/{alert_id}").json()
    assert detail["preferences"]["time_zone"] == zone
    assert detail["contact_hours_now"]["status"] == "outside"
    expected = contact_hours_now(prefs, datetime.now(UTC))

    row.click()
    when = page.locator("#cb-when")
    expect(when).to_have_attribute("data-hours", "outside", timeout=15_000)
    verdict = when.locator(".hours-status")
    expect(verdict).to_have_text(
        f"Outside their hours \u2014 next window opens {expected.next_window_text}")
    expect(when).to_contain_text(f"Every day {opens:%H:%M}\u2013{closes:%H:%M} {zone}")
    expect(when).to_contain_text(f"{local:%H}:")  # their time now, on their clock
    expect(when).to_contain_text("JST")
    expect(when).to_contain_text("Phone call")
    expect(when).to_contain_text("Welsh (cy)")
    # Within the card, after the numbers to call.
    card = page.locator("#callback-card")
    expect(card.locator(".cb-phone")).to_have_text("+447700900789")
    screenshot(page, "advisory-callback-hours.png")

    # Once inside the window, the panel says so.
    inside = preferences(**{**prefs, "contact_hours": {
        "from": f"{local - timedelta(hours=1):%H:%M}", "to": f"{closes:%H:%M}",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}})
    seed_own_words(live.settings, customer, prefs=inside)
    page.locator("#detail-close").click()
    row.click()
    expect(when).to_have_attribute("data-hours", "inside", timeout=15_000)
    expect(when.locator(".hours-status")).to_contain_text("Inside their hours now \u00b7 until")
