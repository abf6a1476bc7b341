"""GET /api/routing, the data dip, against a live worker and dashboard on real Kafka and
Redis: callers resolved by phone, e-mail or customer id (shared identifiers not
guessed, merges followed), the default answer for strangers, precise 400s, and the
service role only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from store.keys import Keys
from tests.conftest import LiveDashboard, running_dashboard
from tests.support.helpers import eventually, produce

HOLDERS = {"service": ("service", "test-suite"), "advisor": ("advisor", "adv-ana"),
           "agent": ("agent", "A-007"), "customer": ("customer", "C-000001")}
TAG = uuid.uuid4().hex[:6]
PL_PHONE, SHARED_PHONE = "+48221234567", "+442079460000"
EMAIL = f"ola.{TAG}@example.org"


def _agent(agent_id: str, level: int, languages: list[str]) -> dict:
    return {"agent_id": agent_id, "name": f"Agent {agent_id}", "skills": {"billing": level},
            "languages": languages, "tier": "standard", "queues": ["billing"],
            "available": True}


AGENTS = [_agent("A-200", 3, ["pl", "en"]), _agent("A-201", 5, ["en"])]
CUSTOMERS = [
    {"customer_id": f"C-pl-{TAG}", "name": "Ola", "language": "pl",
     "identifiers": {"phones": [PL_PHONE], "emails": [EMAIL]}},
    {"customer_id": f"C-s1-{TAG}", "identifiers": {"phones": [SHARED_PHONE]}},
    {"customer_id": f"C-s2-{TAG}", "identifiers": {"phones": [SHARED_PHONE]}},
    {"customer_id": f"C-m0-{TAG}", "segment": "vip"},
    {"customer_id": f"C-m1-{TAG}", "merged_into": f"C-m0-{TAG}"},
]


@pytest.fixture(scope="module")
def live(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[LiveDashboard]:
    with running_dashboard(stack, tmp_path_factory, HOLDERS) as live:
        settings = live.settings
        asyncio.run(produce(settings, settings.topics.agents,
                            [(a["agent_id"].encode(), orjson.dumps(a)) for a in AGENTS]))
        asyncio.run(produce(settings, settings.topics.customers,
                            [(c["customer_id"].encode(), orjson.dumps(c)) for c in CUSTOMERS]))
        keys = Keys(settings.redis_prefix)
        client = redis.Redis.from_url(settings.redis_url)
        try:
            assert asyncio.run(eventually(
                lambda: client.hlen(keys.agents()) == len(AGENTS)
                and all(client.exists(keys.profile(c["customer_id"])) for c in CUSTOMERS)
                and client.exists(keys.merged_into(f"C-m1-{TAG}")), timeout=90)), \
                live.worker.log()
        finally:
            client.close()
        yield live


@pytest.fixture(scope="module")
def http(live: LiveDashboard) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30,
                      headers=live.headers("service")) as client:
        yield client


def _hint(http: httpx.Client, **params: str) -> dict:
    reply = http.get("/api/routing", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_caller_found_by_phone_gets_agents_ranked_with_their_reasons(
        http: httpx.Client) -> None:
    hint = _hint(http, phone=PL_PHONE, intent="billing")
    assert (hint["customer_id"], hint["known"], hint["default"]) == (f"C-pl-{TAG}", True, False)
    assert (hint["queue"], hint["skill"], hint["language"], hint["channel"]) == (
        "billing", "billing", "pl", "call")
    # The Polish speaker first, though the other is the stronger billing expert.
    assert [a["agent_id"] for a in hint["agents"]] == ["A-200", "A-201"]
    language = {a["agent_id"]: next(r for r in a["reasons"] if r["factor"] == "language")
                for a in hint["agents"]}
    assert language["A-200"]["points"] > 0 > language["A-201"]["points"]
    assert language["A-201"]["detail"] == "does not speak pl (speaks en)"
    assert any(r["factor"] == "language" for r in hint["reasons"])
    # The same caller by e-mail (any case), and by a phone whose + became a space.
    assert _hint(http, email=EMAIL.upper(), intent="billing") == hint
    raw = http.get(f"/api/routing?phone={PL_PHONE}&intent=billing")  # + unescaped
    assert raw.status_code == 200 and raw.json() == hint


def test_unknown_shared_and_merged_callers(http: httpx.Client) -> None:
    stranger = _hint(http, phone="+447700900123", intent="billing", channel="chat")
    assert (stranger["customer_id"], stranger["known"], stranger["default"]) == (
        None, False, True)
    assert stranger["reasons"][0] == {"factor": "not_found", "detail":
                                      "no customer record lists the phone number"}
    # Ranked by skill alone, the billing expert first.
    assert [a["agent_id"] for a in stranger["agents"]] == ["A-201", "A-200"]
    assert stranger["channel"] == "chat"

    nobody = _hint(http, customer_id=f"C-none-{TAG}")
    assert nobody["default"] and nobody["reasons"][0]["factor"] == "not_found"

    shared = _hint(http, phone=SHARED_PHONE, intent="billing")
    assert shared["customer_id"] is None and shared["default"]
    assert shared["reasons"][0] == {"factor": "ambiguous", "detail":
                                    "2 customers share the phone number: nobody is guessed"}

    merged = _hint(http, customer_id=f"C-m1-{TAG}", intent="technical")
    assert merged["customer_id"] == f"C-m0-{TAG}"  # the root, whose record says VIP
    assert merged["reasons"][0] == {"factor": "merged", "detail":
                                    f"C-m1-{TAG} is merged into C-m0-{TAG}"}
    assert merged["queue"] == "priority" and merged["tier"] == "senior"


@pytest.mark.parametrize(("query", "message"), [
    ("", "phone, email or customer_id: one of them must name the caller (none was given)"),
    ("?intent=billing", "phone, email or customer_id: one of them must name the caller "
                        "(none was given)"),
    (f"?phone=%2B{PL_PHONE[1:]}&customer_id=C-1",
     "phone, customer_id: give only one of phone, email or customer_id"),
    ("?phone=12345", "phone: must be an E.164 phone number like '+442071234567' (write the "
                     "+ as %2B in a URL)"),
    ("?email=nobody", "email: must be an e-mail address like 'ada@example.org'"),
    ("?customer_id=~phone:%2B44", "customer_id: must be a customer id: 1-128 characters, not "
                                  "starting with '~' or '}', no control characters"),
    ("?customer_id=C-1&channel=fax", "channel='fax': expected one of call, chat, email"),
    ("?customer_id=C-1&intent=" + "x" * 65, "intent: is longer than 64 characters"),
    ("?customer_id=C-1&colour=red", "unknown query parameter 'colour'; this route takes "
                                    "channel, customer_id, email, intent, phone"),
    ("?customer_id=C%001", "customer_id contains control characters"),
])
def test_bad_lookups_are_a_400_naming_the_field(http: httpx.Client, query: str,
                                                message: str) -> None:
    reply = http.get(f"/api/routing{query}")
    assert reply.status_code == 400, reply.text
    assert reply.json() == {"error": "bad_request", "message": message}


@pytest.mark.parametrize("who", ["customer", "agent", "advisor"])
def test_only_the_service_role_may_ask(live: LiveDashboard, who: str) -> None:
    reply = httpx.get(f"{live.url}/api/routing", params={"customer_id": f"C-pl-{TAG}"},
                      headers=live.headers(who), timeout=10)
    assert reply.status_code == 403, reply.text
    assert reply.json()["error"] == "forbidden"
    anonymous = httpx.get(f"{live.url}/api/routing", params={"customer_id": "C-1"}, timeout=10)
    assert anonymous.status_code == 401


def test_a_new_agent_is_ranked_within_a_second_or_so(live: LiveDashboard,
                                                     http: httpx.Client) -> None:
    newcomer = _agent("A-202", 5, ["pl"])
    asyncio.run(produce(live.settings, live.settings.topics.agents,
                        [(b"A-202", orjson.dumps(newcomer))]))

    def ranked_first() -> bool:
        return _hint(http, phone=PL_PHONE, intent="billing")["agents"][0]["agent_id"] == "A-202"
    assert asyncio.run(eventually(ranked_first, timeout=30))
    asyncio.run(produce(live.settings, live.settings.topics.agents, [(b"A-202", None)]))
    assert asyncio.run(eventually(lambda: not ranked_first(), timeout=30))
