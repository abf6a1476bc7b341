"""The CLI against a real Kafka, Redis and worker: `cxt customers show/erase`, `cxt timeline`
for an unknown customer, `cxt produce --topic` to a missing topic, `cxt alerts` paging."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest

from cxt.localstack import LocalStack
from kernel.settings import Settings
from tests.support.helpers import (
    REPO,
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
    settings_env,
)
from tests.support.processes import WorkerProcess, run_cxt
from usecases.timeline import read_timeline

PHONE = "+442071234567"


@dataclass(frozen=True)
class Live:
    settings: Settings
    worker: WorkerProcess


@pytest.fixture(scope="module")
def live(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(settings, tmp_path_factory.mktemp("customers-cli")).start()
    try:
        yield Live(settings, worker)
    finally:
        worker.stop()


def _cxt(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    # No terminal on stdin, as in CI.
    return subprocess.run([sys.executable, "-m", "cxt", *args], cwd=REPO,
                          env=settings_env(live.settings), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def _timeline(live: Live, customer_id: str) -> list[dict]:
    async def entries() -> list[dict]:
        return (await read_timeline(live.settings, customer_id))["events"]

    return asyncio.run(eventually(entries, timeout=30))  # type: ignore[return-value]


def _customer(live: Live, customer_id: str, **fields: object) -> None:
    record = {"customer_id": customer_id, "name": "Ada Lovelace",
              "identifiers": {"phones": [PHONE]}, "segment": "vip", **fields}
    asyncio.run(produce(live.settings, live.settings.topics.customers,
                        [(customer_id.encode(), orjson.dumps(record))]))


def test_show_lists_the_record_identifiers_and_linked_provisional_profiles(live: Live) -> None:
    # A call known only by its phone number waits in a provisional profile ...
    asyncio.run(produce_events(live.settings, [envelope("call", None, identity={"phone": PHONE},
                                                        intent="billing")]))
    assert _timeline(live, f"~phone:{PHONE}")
    # ... until the customer record claims the number and the worker links it.
    _customer(live, "C-show-1")
    assert _timeline(live, "C-show-1")

    result = _cxt(live, "customers", "show", "C-show-1")
    assert result.returncode == 0, result.stderr
    assert "customer C-show-1" in result.stdout and "name: Ada Lovelace" in result.stdout
    assert f"phone:{PHONE}  (resolves here)" in result.stdout
    assert f"~phone:{PHONE}  (1 entries)" in result.stdout
    shown = orjson.loads(_cxt(live, "customers", "show", "C-show-1", "--json").stdout)
    assert shown["record"]["segment"] == "vip" and shown["timeline_entries"] == 1
    assert shown["linked_provisional_profiles"] == {f"~phone:{PHONE}": 1}
    assert shown["identifiers"] == [{"key": f"phone:{PHONE}", "claimants": ["C-show-1"],
                                     "shared_with": [], "shared": False, "matching": True,
                                     "resolves_to": "C-show-1"}]


def test_erase_asks_first_and_then_erases_everything(live: Live) -> None:
    _customer(live, "C-erase-1", identifiers={"emails": ["erase.me@example.org"]})
    asyncio.run(produce_events(live.settings, [envelope("chat", "C-erase-1")]))
    assert _timeline(live, "C-erase-1")

    refused = _cxt(live, "customers", "erase", "C-erase-1")
    assert refused.returncode == 1
    assert "not erasing C-erase-1: standard input is not a terminal" in refused.stderr
    assert "--yes" in refused.stderr and "Traceback" not in refused.stderr
    assert _cxt(live, "customers", "show", "C-erase-1").returncode == 0  # still there

    erased = _cxt(live, "customers", "erase", "C-erase-1", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "erased C-erase-1" in erased.stdout
    gone = _cxt(live, "customers", "show", "C-erase-1")
    assert gone.returncode == 1 and "no customer 'C-erase-1'" in gone.stderr
    assert _cxt(live, "timeline", "C-erase-1").returncode == 1


def test_erase_and_show_refuse_an_impossible_id(live: Live) -> None:
    for action in ("show", "erase"):
        result = _cxt(live, "customers", action, "~phone:+1", "--yes"
                      if action == "erase" else "--json")
        assert result.returncode == 2 and "is not a customer id" in result.stderr


def test_timeline_tells_an_unknown_customer_from_an_empty_filter(live: Live) -> None:
    unknown = _cxt(live, "timeline", "C-nobody-at-all")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == ("cxt: error: no customer 'C-nobody-at-all': no customer "
                                      "record and no timeline entries under that id")
    asyncio.run(produce_events(live.settings, [envelope("call", "C-calls-only")]))
    assert _timeline(live, "C-calls-only")
    filtered = _cxt(live, "timeline", "C-calls-only", "--channel", "survey")
    assert filtered.returncode == 0, filtered.stderr
    assert "no timeline entries of C-calls-only match the filters" in filtered.stdout


def test_produce_to_a_missing_topic_fails_fast_with_one_line(live: Live, tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(envelope("call", "C-1")) for _ in range(3)))
    started = time.monotonic()
    result = run_cxt(live.settings, "produce", str(events), "--topic", "nosuch.topic",
                     "--quiet")
    assert time.monotonic() - started < 15  # it took 40 s and printed 395 lines
    assert result.returncode == 1
    assert result.stderr.strip() == ("cxt: error: topic 'nosuch.topic' does not exist "
                                     "(cxt topics create makes the project's topics)")


def test_alerts_are_listed_a_page_at_a_time(live: Live) -> None:
    surveys = [envelope("survey", f"C-page-{n}", score=1, occurred_at=f"2026-11-22T10:0{n}:00Z")
               for n in range(3)]
    asyncio.run(produce_events(live.settings, surveys))

    def listed() -> dict:
        found = orjson.loads(_cxt(live, "alerts", "--json").stdout)
        return found if len(found["alerts"]) >= 3 else {}

    everything = asyncio.run(eventually(listed, timeout=30))
    assert everything and everything["next"] is None, everything
    first = _cxt(live, "alerts", "--limit", "2")
    assert first.returncode == 0, first.stderr
    second_id = everything["alerts"][1]["alert_id"]
    assert f"2 of 3 alert(s) (of the newest 5000), newest first; --before {second_id} for more" \
        in first.stdout
    rest = _cxt(live, "alerts", "--limit", "2", "--before", second_id)
    assert everything["alerts"][2]["alert_id"] in rest.stdout
    assert "alerts 3-3 of 3, newest first\n" in rest.stdout
    bad = _cxt(live, "alerts", "--before", "AL-nosuch")
    assert bad.returncode == 1 and "--before 'AL-nosuch': no such alert" in bad.stderr
