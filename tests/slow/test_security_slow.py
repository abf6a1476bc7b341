"""Log hygiene (slow): worker, dashboard, summary feed and webhook deliverer run
traffic full of known phone numbers, e-mail addresses, comment texts, bad records,
bad API calls and a webhook receiver that echoes the body in its error; none of
those strings nor any token or secret appears in any of their logs.

The quick security tests are in tests/integration/dashboard/test_security.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from cxt.localstack import LocalStack, free_port
from domain.alerts import alert_id_for
from kernel.settings import ROLES, ApiToken
from tests.support.helpers import (
    b2b_survey,
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
    read_topic,
)
from tests.support.processes import DashboardProcess, SummaryProcess, WebhooksProcess, WorkerProcess
from tests.support.receiver import Receiver, Request, receiving


class _EchoingReceiver(Receiver):
    """Refuses every delivery with 400, quoting the offending value back as careless
    receivers do: the first of `quoted` found in the body, else the body's start."""

    quoted: tuple[str, ...] = ()

    async def handle(self, http: web.Request) -> web.Response:
        body = await http.read()
        self.requests.append(Request(dict(http.headers), body, time.monotonic(), 400))
        text = body.decode(errors="replace")
        found = next((q for q in self.quoted if q in text), text[:100])
        return web.Response(status=400, text=f"cannot store {found!r}")


@pytest.mark.slow
def test_no_personal_data_or_secret_reaches_any_log(stack: LocalStack, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex[:8]
    phone = f"+4420{random.randrange(10**7):07d}"
    phone_spaced = f"{phone[:3]} {phone[3:5]} {phone[5:9]} {phone[9:]}"
    email = f"private.{tag}@example.org"
    comments = [f"my neighbour Bob {tag} knows my PIN", f"confidential complaint {tag}",
                f"chat text nobody may log {tag}"]
    tokens = {role: f"{role}-tok-{uuid.uuid4().hex}" for role in ROLES}
    hook_secret = f"hook-secret-{uuid.uuid4().hex}"
    query_secret = f"qs{uuid.uuid4().hex}"
    receiver = _EchoingReceiver()
    hooks = tmp_path / "webhooks.toml"
    hooks.write_text(
        f'[[endpoint]]\nname = "crm"\nurl = "{receiver.url}?key={query_secret}"\n'
        'secret_env = "CXT_TEST_SECURITY_HOOK_SECRET"\nstart = "earliest"\n'
        'topics = ["alerts", "customer_summary"]\nmax_attempts = 2\n'
        'backoff_initial_s = 0.05\nbackoff_max_s = 0.1\n')
    monkeypatch.setenv("CXT_TEST_SECURITY_HOOK_SECRET", hook_secret)  # inherited by children
    monkeypatch.delenv("CXT_LOG_PII", raising=False)
    receiver.quoted = (comments[0], comments[1], phone, email)
    settings = isolated(stack.settings, dashboard_port=free_port(), webhooks_path=hooks,
                        api_tokens=tuple(ApiToken(r, f"sec-{r}", t) for r, t in tokens.items()))
    asyncio.run(create_topics(settings))
    logs = tmp_path / "logs"
    logs.mkdir()
    worker = WorkerProcess(settings, logs).start()
    dashboard = DashboardProcess(settings, logs).start()
    summaries = SummaryProcess(settings, logs).start()
    hooks_proc = WebhooksProcess(settings, logs)
    processes = [worker, dashboard, summaries, hooks_proc]
    cid = f"C-{tag}"
    try:
        dashboard.wait_ready(tokens["service"])
        record = {"customer_id": cid, "name": "Private Person",
                  "identifiers": {"phones": [phone], "emails": [email]}}
        survey = b2b_survey(cid, comments[0])
        good = [envelope("call", identity={"phone": phone_spaced}, intent=comments[1]),
                envelope("email", identity={"email": email.upper()}, subject=comments[1],
                         body_excerpt=comments[1]),
                envelope("chat", cid, transcript_excerpt=comments[2]), survey]
        bad_event = envelope("call", cid, identity={"phone": phone, "email": email},
                             note=comments[2])
        bad_event["occurred_at"] = f"yesterday {phone} {email}"
        bad_records = [
            (settings.topics.for_channel("call"), orjson.dumps(bad_event)),
            (settings.topics.for_channel("chat"), f'{{"oops": "{email} {comments[2]}'.encode()),
            (settings.topics.for_channel("survey"),
             orjson.dumps(envelope("survey", cid, score=99, comment=comments[0]))),
            (settings.topics.customers,
             orjson.dumps({"customer_id": 7, "identifiers": {"phones": [phone]},
                           "note": comments[1]})),
            (settings.topics.alert_actions,
             orjson.dumps({"alert_id": "AL-nope", "action": "acknowledge",
                           "actor": email, "note": comments[0]})),
        ]

        async def traffic() -> None:
            await produce(settings, settings.topics.customers,
                          [(cid.encode(), orjson.dumps(record))])
            await asyncio.sleep(1)  # the record first, so the identities resolve
            await produce_events(settings, good)
            for topic, value in bad_records:
                await produce(settings, topic, [(cid.encode(), value)])
            async with receiving(receiver):
                hooks_proc.start()
                await asyncio.to_thread(bad_calls)
                await eventually(lambda: len(receiver.requests) >= 2, timeout=60)

        def bad_calls() -> None:
            """Requests with wrong tokens, wrong roles, bad parameters and bodies."""
            base = settings.dashboard_url
            with httpx.Client(base_url=base, timeout=30) as http:
                adv = {"Authorization": f"Bearer {tokens['advisor']}"}
                http.get(f"/api/customers/{phone}/timeline", headers=adv)
                http.get(f"/api/customers/{cid}/timeline", params={"channel": email,
                                                                    "before": phone}, headers=adv)
                http.get("/api/alerts", params={"queue": comments[0], "limit": "x"},
                         headers=adv)
                http.post(f"/api/alerts/{alert_id_for(survey['event_id'])}/ack",
                          content=f'{{"note": "{comments[1]}", "actor": "{email}"',
                          headers=adv)
                http.post(f"/api/alerts/{alert_id_for(survey['event_id'])}/resolve",
                          json={"note": comments[2], "category": email}, headers=adv)
                http.get(f"/api/customers/{cid}/context", params={"intent": comments[0]},
                         headers={"Authorization": f"Bearer {tokens['agent']}x"})
                http.get("/metrics", headers={"Authorization": f"Bearer {tokens['agent']}"})
                http.get(f"/api/customers/{cid}/timeline",
                         headers={"Authorization": f"Bearer {hook_secret}"})
            socket = f"ws://{settings.dashboard_host}:{settings.dashboard_port}/ws/alerts"
            with contextlib.suppress(InvalidStatus):
                connect(socket, subprotocols=["cxt.v1", f"bearer.{tokens['service']}0"],  # type: ignore[list-item]
                        open_timeout=5).close()
            with contextlib.suppress(InvalidStatus):
                connect(socket, additional_headers={"Authorization": f"Bearer {email}"},
                        open_timeout=5).close()

        asyncio.run(traffic())

        # Everything went through: the alert exists, the summary and dead letters were
        # published, the receiver refused deliveries and they were given up.
        def summarised(records: list) -> bool:
            return any(r.key == cid.encode() and r.value is not None for r in records)
        assert summarised(asyncio.run(read_topic(settings, settings.topics.customer_summary,
                                                 until=summarised, timeout=60)))
        letters = asyncio.run(read_topic(settings, settings.topics.deadletter,
                                         until=lambda ms: len(ms) >= len(bad_records)))
        assert len(letters) >= len(bad_records) - 1, [orjson.loads(m.value) for m in letters]
        given_up = asyncio.run(read_topic(settings, settings.topics.webhook_deadletter,
                                          until=lambda ms: len(ms) >= 1, timeout=60))
        assert given_up, hooks_proc.log()
        for process in processes:
            process.assert_alive()
    finally:
        for process in processes:
            if process.proc is not None:
                process.proc.send_signal(signal.SIGTERM)
        for process in processes:
            process.stop()

    secrets = {"phone": phone, "phone (as sent)": phone_spaced, "phone digits": phone[1:],
               "email": email, "email (as sent)": email.upper(),
               **{f"comment {i}": c for i, c in enumerate(comments)},
               **{f"{role} token": t for role, t in tokens.items()},
               "webhook secret": hook_secret, "webhook url query": query_secret}
    texts = {p.log_path.name: p.log_path.read_text(errors="replace") for p in processes}
    assert all(texts.values()), "a process wrote no log at all"
    assert "webhook crm: gave up" in texts[hooks_proc.log_path.name]
    leaks = {(name, what) for name, text in texts.items() for what, s in secrets.items()
             if s in text or s.lower() in text.lower()}
    assert not leaks, "\n\n".join(
        f"{name} leaks {what}:\n" + "\n".join(line for line in texts[name].splitlines()
                                              if secrets[what].lower() in line.lower())[:2000]
        for name, what in sorted(leaks))
