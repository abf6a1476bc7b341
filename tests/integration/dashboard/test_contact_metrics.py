"""GET /api/metrics/contacts on the live dashboard, over counters written through
store.contact_reasons as the worker writes them."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from redis.asyncio import Redis

from store.contact_reasons import ContactReasonStore
from store.keys import Keys
from store.negatives import NegativeStore
from tests.conftest import LiveDashboard
from tests.support.contacts import count_contacts, fact

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def counted(live: LiveDashboard) -> LiveDashboard:
    now_ms = int(time.time() * 1000)

    async def fill() -> None:
        redis = Redis.from_url(live.settings.redis_url)
        try:
            keys = Keys(live.settings.redis_prefix)
            store = ContactReasonStore(redis, keys, ttl_days=1)
            # call:a follows a billing call 26 hours ago, outside the report: a repeat.
            await count_contacts(NegativeStore(redis, keys, counters_ttl_days=1), [
                fact("C-a", "call:old", now_ms - 26 * HOUR_MS),
                fact("C-a", "call:a", now_ms),
                fact("C-a", "call:a", now_ms, negative=True),
                fact("C-b", "chat:b", now_ms, queue="tech-chat", intent="technical"),
                fact("C-c", "email:c", now_ms - 30 * HOUR_MS, queue=None, intent=None,
                     negative=True),
            ])
            await store.count_alerts([("AL-1", now_ms), ("AL-1", now_ms)])
        finally:
            await redis.aclose()

    asyncio.run(fill())
    return live


def test_contacts_by_hour_with_filters(counted: LiveDashboard, http: httpx.Client) -> None:
    auth = counted.headers("advisor")
    reply = http.get("/api/metrics/contacts", headers=auth)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["period"] == "hour" and len(body["rows"]) == 24
    assert sum(r["contacts"] for r in body["rows"]) == 2  # the e-mail is 30 hours old
    [row] = [r for r in body["rows"] if r["contacts"]]
    assert (row["repeat"], row["negative"], row["negative_alerts"]) == (1, 1, 1)
    assert row["by_intent"][0] == {"intent": "billing", "contacts": 1, "repeat": 1,
                                   "repeat_rate": 1.0, "negative": 1, "negative_share": 1.0}
    for params, contacts in (({"channel": "chat"}, 1), ({"queue": "billing-uk"}, 1),
                             ({"intent": "Technical"}, 1), ({"intent": "sales"}, 0)):
        rows = http.get("/api/metrics/contacts", params=params, headers=auth).json()["rows"]
        assert sum(r["contacts"] for r in rows) == contacts, params


def test_contacts_by_day(counted: LiveDashboard, http: httpx.Client) -> None:
    reply = http.get("/api/metrics/contacts", params={"period": "day", "days": 3, "queue": "-"},
                     headers=counted.headers("service"))
    assert reply.status_code == 200, reply.text
    rows = reply.json()["rows"]
    assert len(rows) == 3
    assert sum(r["contacts"] for r in rows) == 1
    assert [i["intent"] for r in rows for i in r["by_intent"]] == ["-"]


@pytest.mark.parametrize(("params", "message"), [
    ({"hours": "0"}, "hours=0: expected 1 to 744"),
    ({"period": "day", "hours": "3"}, "hours= goes with period=hour"),
    ({"channel": "fax"}, "channel='fax': expected one of"),
    ({"agent": "A-1"}, "unknown query parameter 'agent'"),
    ({"intent": "x" * 201}, "intent is longer than 200 characters"),
])
def test_bad_parameters_are_a_400(counted: LiveDashboard, http: httpx.Client,
                                  params: dict[str, str], message: str) -> None:
    reply = http.get("/api/metrics/contacts", params=params, headers=counted.headers("advisor"))
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["message"]


def test_agents_may_not_read_it(counted: LiveDashboard, http: httpx.Client) -> None:
    reply = http.get("/api/metrics/contacts", headers=counted.headers("agent"))
    assert reply.status_code == 403
