"""Dead letters made for the tests: a worker with a tiny size limit rejects what it is
given (tests/integration/cxt/test_deadletters_cli.py, tests/slow/test_deadletter_replay_slow.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import orjson

from kernel.settings import Settings
from tests.support.helpers import eventually, produce, produce_events
from tests.support.processes import WorkerProcess, run_cxt

SMALL = 120  # bytes: a worker with this limit rejects every envelope below as too_large


def listed(settings: Settings, *args: str) -> list[dict]:
    result = run_cxt(settings, "deadletters", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def dead_lettered(settings: Settings, events: list[dict], tmp_path: Path,
                   extra: Sequence[tuple[str, bytes]] = ()) -> None:
    """Run a worker with a tiny size limit over `events` (and raw `extra` values) until
    all of them are dead letters."""
    strict = replace(settings, max_event_bytes=SMALL)
    worker = WorkerProcess(strict, tmp_path).start()
    try:
        asyncio.run(produce_events(settings, events))
        for topic, value in extra:
            asyncio.run(produce(settings, topic, [(b"C-x", value)]))
        total = len(events) + len(extra)
        assert asyncio.run(eventually(lambda: len(listed(settings)) == total, timeout=90,
                                      interval=1)), worker.log()
    finally:
        worker.stop()
