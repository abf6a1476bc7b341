"""consumers/example_subscriber.py: its own group, from the beginning or from now."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from cxt.localstack import LocalStack
from kernel.settings import Settings
from tests.support.helpers import REPO, create_topics, isolated, produce, settings_env


@pytest.fixture(scope="module")
def settings(stack: LocalStack) -> Settings:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    return settings


def _entries(settings: Settings, n: int) -> list[dict]:
    entries = [{"event_id": uuid.uuid4().hex, "customer_id": "C-1", "channel": "call"}
               for _ in range(n)]
    asyncio.run(produce(settings, settings.topics.timeline,
                        [(b"C-1", orjson.dumps(e)) for e in entries]))
    return entries


def _subscribe(settings: Settings, tmp_path: Path, *args: str, expect: int,
               during: Callable[[], object] | None = None) -> list[str]:
    """Run the subscriber until it printed `expect` lines (or 30 s), then Ctrl-C it;
    `during` runs once it has had time to join its group."""
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}.jsonl"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "consumers.example_subscriber", *args],
                                cwd=REPO, env=settings_env(settings), stdout=sink,
                                stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    if during is not None:
        time.sleep(5)  # joining the group: a --from-now subscriber must be in before we send
        during()
    while len(out.read_text().splitlines()) < expect and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # anything beyond `expect` would show up now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return [orjson.loads(line)["event_id"] for line in out.read_text().splitlines()]


def test_from_beginning_then_resume_where_the_group_left_off(settings: Settings,
                                                            tmp_path: Path) -> None:
    first = _entries(settings, 3)
    group = f"team-{uuid.uuid4().hex[:6]}"
    seen = _subscribe(settings, tmp_path, "--group", group, "--from-beginning", expect=3)
    assert seen == [e["event_id"] for e in first]
    later = _entries(settings, 2)
    seen = _subscribe(settings, tmp_path, "--group", group, "--from-beginning", expect=2)
    assert seen == [e["event_id"] for e in later]  # committed ones are not shown again


def test_from_now_skips_history(settings: Settings, tmp_path: Path) -> None:
    _entries(settings, 2)
    sent: list[dict] = []
    seen = _subscribe(settings, tmp_path, "--group", f"new-{uuid.uuid4().hex[:6]}",
                      "--from-now", expect=1, during=lambda: sent.extend(_entries(settings, 1)))
    assert seen == [sent[0]["event_id"]]


def test_missing_group_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "consumers.example_subscriber"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--group" in result.stderr
