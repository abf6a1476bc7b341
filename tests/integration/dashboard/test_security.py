"""Security: tokens and roles on every route, erasure everywhere, nothing personal in logs.

- Access: every operation of dashboard/openapi.json and both websockets refuse a
  missing token and a wrong token (401) and every role the spec does not list (403),
  and let the listed roles through.  The roles are read from the spec's "Roles:"
  lines, so a new route is covered as soon as it is documented, and the app's own
  routing table must not hold an API route the spec does not document.
- Erasure: a customer with timeline entries, identifiers, a bottom-2-box alert and a
  summary, erased by a null record on cx.customers.v1, leaves no key or value naming
  them or their identifiers in Redis (the summary feed's week-long erasure marker
  aside), no alert in the indexes, and tombstones on cx.timeline.v1, cx.alerts.v1
  and cx.customer-summary.v1; the API has nothing left about them.
- Log hygiene (slow): worker, dashboard, summary feed and webhook deliverer run
  traffic full of known phone numbers, e-mail addresses, comment texts, bad records,
  bad API calls and a webhook receiver that echoes the body in its error; none of
  those strings nor any token or secret appears in any of their logs.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dashboard.app import create_app
from domain.alerts import alert_id_for
from kernel.logsafe import MASK, redact, safe_url
from kernel.settings import Settings
from tests.conftest import LiveDashboard
from tests.support.helpers import (
    REPO,
    b2b_survey,
    envelope,
    eventually,
    produce,
    produce_events,
    read_topic,
)
from tests.support.processes import SummaryProcess

SPEC = json.loads((REPO / "dashboard" / "openapi.json").read_text())
# customer: a customer token (tests/conftest.py HOLDERS) must be refused everywhere but /api/me.
ROLES = ("advisor", "agent", "service", "customer")
# Pages and the spec itself hold no data: the only routes open without a token.
PUBLIC = {"/", "/advisory", "/agent", "/me", "/openapi.json", "/static"}
SAMPLE_PARAMS = {"customer_id": "C-none", "alert_id": "AL-none", "agent_id": "A-007",
                 "note_id": "N-none"}


def _operations() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, roles) of every documented operation."""
    out = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            text = f"{operation.get('summary', '')} {operation.get('description', '')}"
            found = re.search(r"Roles: ([a-z, ]+)\.", text)
            assert found, f"{method.upper()} {path}: the spec does not say which roles may call"
            roles = tuple(r.strip() for r in found.group(1).split(","))
            assert set(roles) <= set(ROLES), (path, roles)
            out.append((method.upper(), path.format(**SAMPLE_PARAMS), roles))
    return out


OPERATIONS = _operations()
SOCKETS = [("/ws/alerts", ("advisor", "service")), ("/ws/agents/A-007", ("agent", "service"))]


# -- access ------------------------------------------------------------------------------


def test_the_spec_documents_every_route_the_app_serves() -> None:
    documented = {re.sub(r"\{[^}]+\}", "{}", p) for p in SPEC["paths"]}
    served, sockets = set(), set()
    for route in create_app(Settings()).routes:  # built only: no service is reached
        path = getattr(route, "path", "")
        if path.startswith("/ws/"):
            sockets.add(re.sub(r"\{[^}]+\}", "{}", path))
        elif path not in PUBLIC:
            served.add(re.sub(r"\{[^}]+\}", "{}", path))
    assert sockets == {re.sub(r"/A-007$", "/{}", p) for p, _ in SOCKETS}
    # The three alert actions are one route in the app: /api/alerts/{alert_id}/{action}.
    documented |= {"/api/alerts/{}/{}"}
    assert served <= documented, f"undocumented, so untested for access: {served - documented}"
    assert len(OPERATIONS) >= 10


@pytest.mark.parametrize(("method", "path", "roles"), OPERATIONS,
                         ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_each_documented_operation_checks_token_and_role(
        live: LiveDashboard, http: httpx.Client, method: str, path: str,
        roles: tuple[str, ...]) -> None:
    wrong = f"Bearer {live.tokens['advisor']}x"  # one character more than a real token
    for headers in ({}, {"Authorization": wrong}, {"Authorization": "Bearer"},
                    {"Authorization": f"Basic {live.tokens['service']}"}):
        reply = http.request(method, path, headers=headers, json={})
        assert reply.status_code == 401, (method, path, headers, reply.text)
        assert reply.json()["error"] == "unauthorized"
    for role in ROLES:
        reply = http.request(method, path, headers=live.headers(role), json={})
        if role in roles:
            assert reply.status_code not in (401, 403), (method, path, role, reply.text)
        else:
            assert reply.status_code == 403, (method, path, role, reply.text)
            assert reply.json()["error"] == "forbidden"


@pytest.mark.parametrize(("path", "roles"), SOCKETS, ids=[p for p, _ in SOCKETS])
def test_each_websocket_checks_token_and_role(live: LiveDashboard, path: str,
                                              roles: tuple[str, ...]) -> None:
    url = f"ws://{live.settings.dashboard_host}:{live.settings.dashboard_port}{path}"

    def status(protocols: list[str], headers: dict[str, str] | None = None) -> int:
        try:
            with connect(url, subprotocols=protocols, additional_headers=headers,  # type: ignore[arg-type]
                         open_timeout=10) as ws:
                assert orjson.loads(ws.recv(timeout=10))["type"] == "hello"
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    assert status(["cxt.v1"]) == 401
    assert status(["cxt.v1", "bearer.not-a-token-of-ours-0123"]) == 401
    assert status(["cxt.v1"], {"Authorization": "Bearer not-a-token-of-ours-0123"}) == 401
    for role in ROLES:
        got = status(["cxt.v1", f"bearer.{live.tokens[role]}"])
        assert got == (101 if role in roles else 403), (path, role, got)


# -- erasure -----------------------------------------------------------------------------


def _tombstone(settings, topic: str, cid: str, timeout: float = 30) -> bool:
    def found(records: list) -> bool:
        return any(r.key == cid.encode() and r.value is None for r in records)
    return found(asyncio.run(read_topic(settings, topic, until=found, timeout=timeout)))


def _redis_dump(client: redis.Redis, prefix: str) -> dict[str, str]:
    """Every key under the prefix with its content as text, whatever its type."""
    out = {}
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        kind = client.type(key)
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        else:
            value = kind
        out[key] = str(value)
    return out


def test_erasure_removes_the_customer_everywhere_and_publishes_tombstones(
        live: LiveDashboard, http: httpx.Client, tmp_path: Path) -> None:
    settings = live.settings
    cid = f"C-{uuid.uuid4().hex[:10]}"
    phone = f"+4479{random.randrange(10**8):08d}"
    email = f"erase-{uuid.uuid4().hex[:8]}@example.org"
    comment = f"never keep this {uuid.uuid4().hex[:8]}"
    record = {"customer_id": cid, "name": "Eve", "identifiers": {"phones": [phone],
                                                                 "emails": [email]}}
    summaries = SummaryProcess(settings, tmp_path).start()
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    prefix = settings.redis_prefix
    try:
        # A survey from the phone before the CRM knows it: its alert is raised under the
        # provisional profile, whose id it keeps after the customer claims the phone.
        early = b2b_survey(None, comment, identity={"phone": phone})
        asyncio.run(produce_events(settings, [early]))
        early_alert = alert_id_for(early["event_id"])
        assert asyncio.run(eventually(
            lambda: client.exists(f"{prefix}:{{{early_alert}}}:alert"), timeout=30)), (
            live.worker.log())
        asyncio.run(produce(settings, settings.topics.customers,
                            [(cid.encode(), orjson.dumps(record))]))
        # Records and events travel on different topics: wait for the identity index.
        assert asyncio.run(eventually(
            lambda: client.get(f"{prefix}:{{email:{email}}}:id") == cid,
            timeout=30)), live.worker.log()
        survey = b2b_survey(cid, comment)
        asyncio.run(produce_events(settings, [
            envelope("call", identity={"phone": phone}, intent="billing"),
            envelope("email", identity={"email": email}, subject=comment),
            envelope("chat", cid, transcript_excerpt=comment), survey]))
        alert_id = alert_id_for(survey["event_id"])
        advisor = live.headers("advisor")

        def stored() -> bool:
            events = http.get(f"/api/customers/{cid}/timeline", headers=advisor).json()["events"]
            alert = http.get(f"/api/alerts/{alert_id}", headers=advisor)
            return len(events) == 5 and alert.status_code == 200

        assert asyncio.run(eventually(stored, timeout=30)), live.worker.log()

        def summarised(records: list) -> bool:
            return any(r.key == cid.encode() and r.value is not None for r in records)
        assert summarised(asyncio.run(read_topic(
            settings, settings.topics.customer_summary, until=summarised, timeout=60))), (
            summaries.log())
        before = _redis_dump(client, prefix)
        assert any(cid in k for k in before) and any(phone in k for k in before)

        asyncio.run(produce(settings, settings.topics.customers, [(cid.encode(), None)]))

        for topic in (settings.topics.timeline, settings.topics.alerts,
                      settings.topics.customer_summary):
            assert _tombstone(settings, topic, cid), (topic, live.worker.log(), summaries.log())
        assert _tombstone(settings, settings.topics.alerts, f"~phone:{phone}")

        marker = f"{prefix}:{{{cid}}}:sum:erased"
        secrets = (cid, phone, email, comment, alert_id, early_alert)

        def leftovers() -> dict[str, str]:
            return {k: v for k, v in _redis_dump(client, prefix).items()
                    if k != marker and any(s in k or s in v for s in secrets)}

        assert asyncio.run(eventually(lambda: not leftovers(), timeout=20)), leftovers()
        # The summary feed's marker keeps late messages from bringing the summary back:
        # a time stamp only, and it expires.
        assert client.get(marker) is None or (client.get(marker).isdigit()
                                              and 0 < client.ttl(marker) <= 8 * 86_400)
        for index in ("recent", "due"):
            for gone in (alert_id, early_alert):
                assert client.zscore(f"{prefix}:alerts:{index}", gone) is None, (index, gone)

        reply = http.get(f"/api/customers/{cid}/timeline", headers=advisor)
        assert reply.status_code in (200, 404) and not reply.json().get("events"), reply.text
        for gone in (alert_id, early_alert):
            assert http.get(f"/api/alerts/{gone}", headers=advisor).status_code == 404
        alerts = http.get("/api/alerts", params={"limit": 500}, headers=advisor).json()["alerts"]
        assert all(a["customer_id"] not in (cid, f"~phone:{phone}") for a in alerts)
        context = http.get(f"/api/customers/{cid}/context", headers=advisor)
        assert comment not in context.text and phone not in context.text, context.text
        live.worker.assert_alive()
        summaries.assert_alive()
    finally:
        summaries.stop()
        client.close()


# -- log hygiene -------------------------------------------------------------------------


def test_redact_masks_emails_and_international_phones_only() -> None:
    line = "from +44 20 7946 0958 / jo.doe+x@Example.co.uk, offset 123456789 at 2026-11-23"
    assert redact(line) == f"from {MASK} / {MASK}, offset 123456789 at 2026-11-23"
    assert safe_url("https://u:pw@hooks.example.com:8443/T0/SECRET?key=k") == \
        "https://hooks.example.com:8443/..."


def test_debug_opt_in_leaves_lines_alone() -> None:
    import logging

    from kernel import logsafe
    assert Settings.from_env({"CXT_LOG_PII": "1"}).log_pii
    assert not Settings.from_env({}).log_pii
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "call %s from %s", (
        "+44 20 7946 0958", "a@b.example"), None)
    assert logsafe.RedactingFilter().filter(record)
    assert record.getMessage() == f"call {MASK} from {MASK}"
    try:
        raise ValueError("no customer a@b.example")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None,
                                   sys.exc_info())
    assert "a@b.example" not in (logsafe.clean(record).exc_text or "x@y.example")


def test_consumers_take_the_workers_tombstones() -> None:
    """A null value keyed by customer id on cx.timeline.v1 / cx.alerts.v1 (an erasure):
    the example subscriber hands on a deletion notice, the webhook deliverer sends one,
    the summary feed skips it (the record on cx.customers.v1 did the erasing)."""
    from types import SimpleNamespace

    from consumers.example_subscriber import _entry
    from consumers.summary import read_batch
    from consumers.webhooks import request_body
    from kernel.settings import Topics

    topics = Topics()
    assert _entry(b"C-9", None) == {"customer_id": "C-9", "deleted": True}
    for topic in (topics.alerts, topics.customer_summary):
        record = SimpleNamespace(topic=topic, key=b"C-9", value=None, timestamp=1)
        body, why = request_body(record, topics.customer_summary)  # type: ignore[arg-type]
        assert (orjson.loads(body or b"null"), why) == ({"customer_id": "C-9", "deleted": True},
                                                        "")
    tombstones = [SimpleNamespace(topic=t, key=b"C-9", value=None, timestamp=1)
                  for t in (topics.timeline, topics.alerts)]
    changes = read_batch(tombstones, topics, 2)  # type: ignore[arg-type]
    assert changes.skipped == {"tombstone": 2} and not changes.touched
