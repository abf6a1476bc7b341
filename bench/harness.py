"""What the pipeline benchmarks share (run as scripts, so imported by module name).

- `Tracker` / `Watcher`: which sent events came back on the timeline, dead-letter
  and alerts topics (the Watcher reads them from their current ends, without a
  consumer group, and hands every record to a sink with `timeline`, `alert` and
  `dead_letter` methods, such as a `Tracker`);
- `iter_events` / `make_events`: the seeded traffic mix with event ids unique to a run;
- `Worker`: a stream worker as a child process, with its CPU time and peak RSS
  read from /proc;
- `private_stack`: a fresh Kafka + Redis in a temporary directory;
- `worker_env`, `machine_info`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import platform
import secrets
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from cxt.traffic import TrafficGenerator
from domain.rated import CONTACT_ID_FIELDS
from kernel.settings import Settings
from kernel.topics import describe_topics

REPO = Path(__file__).resolve().parent.parent
WORKER_STOP_TIMEOUT = 20.0
EVENT_ID_PREFIX = "bench-"


# --- who came back -----------------------------------------------------------------

@dataclass
class Tracker:
    """Which of our events are still out, and what came back."""

    pending: dict[str, int] = field(default_factory=dict)  # event_id -> sent ns
    latency_ms: list[float] = field(default_factory=list)  # timeline timestamp - sent
    consume_latency_ms: list[float] = field(default_factory=list)  # consume time - sent
    dead: Counter[str] = field(default_factory=Counter)  # reason -> count
    seen: int = 0
    missing_bench_field: int = 0  # timeline payload lost our extra field
    first_sent_ns: int = 0
    all_acked_ns: int = 0  # when Kafka had acknowledged every send
    last_seen_ns: int = 0
    # bottom-2-box alerts (cx.alerts.v1, event "raised")
    surveys: dict[str, int] = field(default_factory=dict)  # every survey sent -> sent ns
    alert_pending: dict[str, int] = field(default_factory=dict)  # survey id -> sent ns
    alerts_expected: int = 0
    alerts_seen: int = 0
    alerts_dead_lettered: int = 0  # expected, but the survey itself was dead-lettered
    alerts_unexpected: int = 0  # raised for one of our surveys the bench did not expect
    raised: Counter[str] = field(default_factory=Counter)  # survey id -> "raised" count
    alert_latency_ms: list[float] = field(default_factory=list)  # alert timestamp - sent
    alert_worker_latency_ms: list[float] = field(default_factory=list)  # alert's latency_ms
    last_alert_ns: int = 0

    def sent(self, event_id: str, sent_ns: int, *, survey: bool = False,
             expects_alert: bool = False) -> None:
        self.pending[event_id] = sent_ns
        self.first_sent_ns = self.first_sent_ns or sent_ns
        if survey:
            self.surveys[event_id] = sent_ns
        if expects_alert:
            self.alert_pending[event_id] = sent_ns
            self.alerts_expected += 1

    def alert(self, alert: dict[str, Any], timestamp_ms: int, now_ns: int) -> None:
        if alert.get("event") != "raised":
            return  # acknowledged / escalated / ...: not a raise
        survey_id = str(alert.get("survey_event_id"))
        sent_ns = self.surveys.get(survey_id)
        if sent_ns is None:
            return  # not ours
        self.raised[survey_id] += 1
        if self.raised[survey_id] > 1:
            return  # a duplicate; only the first raise is timed
        if self.alert_pending.pop(survey_id, None) is None:
            self.alerts_unexpected += 1
            return
        self.alert_latency_ms.append((timestamp_ms * 1_000_000 - sent_ns) / 1e6)
        worker_ms = alert.get("latency_ms")
        if isinstance(worker_ms, int | float):
            self.alert_worker_latency_ms.append(float(worker_ms))
        self.alerts_seen += 1
        self.last_alert_ns = now_ns

    @property
    def alert_duplicates(self) -> int:
        """Extra "raised" events beyond the first, over all our surveys."""
        return sum(n - 1 for n in self.raised.values() if n > 1)

    @property
    def alert_duplicate_surveys(self) -> int:
        return sum(1 for n in self.raised.values() if n > 1)

    def timeline(self, entry: dict[str, Any], timestamp_ms: int, now_ns: int) -> None:
        sent_ns = self.pending.pop(str(entry.get("event_id")), None)
        if sent_ns is None:
            return  # not ours, or a repeat
        payload = entry.get("payload") or {}
        if payload.get("bench_sent_ns") != sent_ns:
            self.missing_bench_field += 1
        self.latency_ms.append((timestamp_ms * 1_000_000 - sent_ns) / 1e6)
        self.consume_latency_ms.append((now_ns - sent_ns) / 1e6)
        self.seen += 1
        self.last_seen_ns = now_ns

    def dead_letter(self, record: dict[str, Any], now_ns: int, timestamp_ms: int = 0) -> None:
        original = dead_letter_original(record)
        if original is None:
            return
        event_id = str(original.get("event_id"))
        if self.pending.pop(event_id, None) is not None:
            self.dead[str(record.get("reason"))] += 1
            self.last_seen_ns = now_ns
        if self.alert_pending.pop(event_id, None) is not None:
            self.alerts_dead_lettered += 1  # no alert will come for it


def dead_letter_original(record: dict[str, Any]) -> dict[str, Any] | None:
    """The envelope a dead letter carries (base64 of the original value), if it parses."""
    try:
        original = orjson.loads(base64.b64decode(record.get("original") or ""))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return original if isinstance(original, dict) else None


class Watcher:
    """Reads the timeline, dead-letter and alerts topics from their current ends.

    Every record goes to `sink.timeline(entry, timestamp_ms, now_ns)`,
    `sink.alert(alert, timestamp_ms, now_ns)` or
    `sink.dead_letter(record, now_ns, timestamp_ms)` (record timestamps in ms).
    """

    def __init__(self, settings: Settings, sink: Any) -> None:
        self.settings = settings
        self.tracker = sink
        # No group: manual assignment, so nothing is committed and the
        # running pipeline's consumer groups are untouched.
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
            enable_auto_commit=False, fetch_max_wait_ms=20, max_partition_fetch_bytes=4 << 20,
        )

    async def start(self) -> None:
        await self.consumer.start()
        topics = (self.settings.topics.timeline, self.settings.topics.deadletter,
                  self.settings.topics.alerts)
        partitions = []
        for topic in topics:
            ids = await partitions_of(self.settings, topic)
            partitions += [TopicPartition(topic, p) for p in ids]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before anything is sent
            await self.consumer.position(tp)

    async def run(self) -> None:
        timeline, alerts = self.settings.topics.timeline, self.settings.topics.alerts
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=20_000)
            now_ns = time.time_ns()
            for tp, messages in batches.items():
                for message in messages:
                    value = parse_json(message.value)
                    if value is None:
                        continue
                    if tp.topic == timeline:
                        self.tracker.timeline(value, message.timestamp, now_ns)
                    elif tp.topic == alerts:
                        self.tracker.alert(value, message.timestamp, now_ns)
                    else:
                        self.tracker.dead_letter(value, now_ns, message.timestamp)

    async def stop(self) -> None:
        await self.consumer.stop()


async def partitions_of(settings: Settings, topic: str) -> set[int]:
    # A just-created topic can take a moment to appear; the admin client's
    # description is public and always asks the cluster.
    for _ in range(50):
        count = (await describe_topics(settings)).get(topic)
        if count:
            return set(range(count))
        await asyncio.sleep(0.2)
    raise RuntimeError(f"topic {topic} does not exist (is the pipeline set up?)")


def parse_json(value: bytes | None) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


# --- the traffic -------------------------------------------------------------------

def new_run_tag() -> str:
    """8 hex digits naming one batch of bench events (see `iter_events`)."""
    return secrets.token_hex(4)


def run_tag_of(event_id: str) -> str | None:
    """The run tag of an event id made by `iter_events`, else None."""
    if event_id.startswith(EVENT_ID_PREFIX) and event_id[14:15] == "-":
        return event_id[6:14]
    return None


def iter_events(count: int, generator: TrafficGenerator, run: str
                ) -> Iterator[tuple[str, dict]]:
    """`count` events of `generator`, lazily, ids unique to `run` ("bench-RUN-<uuid>").

    The pipeline de-duplicates by event_id, so a second run against the same
    pipeline would otherwise see nothing come back.  Survey contact_ids point
    at events of the same generator (by event_id or the channel's own id), so
    renaming those ids alike keeps them linked without remembering any ids.
    Each payload also gets `bench_seq`, the event's index in the run, which
    the pipeline passes through unchanged.
    """
    prefix = f"{EVENT_ID_PREFIX}{run}-"
    for seq in range(count):
        channel, envelope = generator.next_event()
        envelope["event_id"] = prefix + envelope["event_id"]
        payload = envelope["payload"]
        for name in (*CONTACT_ID_FIELDS.get(channel, ()), "contact_id"):
            if isinstance(payload.get(name), str):
                payload[name] = prefix + payload[name]
        payload["bench_seq"] = seq
        yield channel, envelope


def make_events(count: int, customers: list[dict], seed: int,
                **generator_options: Any) -> list[tuple[str, dict]]:
    """The seeded mix as a list, with event ids made unique to this run."""
    generator = TrafficGenerator(customers, seed, **generator_options)
    return list(iter_events(count, generator, new_run_tag()))


# --- the worker ----------------------------------------------------------------------

def worker_env(settings: Settings) -> dict[str, str]:
    """This process's environment, with every setting set from `settings` (`Settings.to_env`)."""
    env = {**os.environ, **settings.to_env()}
    env.update({
        # No metrics endpoint: it would clash with a developer's `cxt up` worker.
        "CXT_WORKER_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
        # The worker runs in a scratch directory (faust and Quix keep state
        # under the working directory); the checkout stays importable.
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
    })
    return env


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (field 3 onwards), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _children_of(root: int) -> list[int]:
    """Every live descendant of `root` (a scan of /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


class Worker:
    """A stream worker as a subprocess in its own session, logging to a file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_ns = 0
        self._children: list[int] = []
        self._children_at = 0.0

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.started_ns = time.time_ns()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with status {self.proc.returncode}")

    def stop(self, timeout: float = WORKER_STOP_TIMEOUT) -> dict[str, Any]:
        """SIGTERM, then SIGKILL (of its session) after `timeout` s.

        Returns {"exit_code", "seconds" (SIGTERM to exit), "killed"}.
        """
        if self.proc is None:
            return {"exit_code": None, "seconds": 0.0, "killed": False}
        if self.proc.poll() is not None:
            return {"exit_code": self.proc.returncode, "seconds": 0.0, "killed": False}
        started, killed = time.monotonic(), False
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session, see start()
            self.proc.wait()
        return {"exit_code": self.proc.returncode,
                "seconds": round(time.monotonic() - started, 2), "killed": killed}

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the worker, its reaped children and its live descendants."""
        if self.proc is None:
            return None
        fields = _stat_fields(self.proc.pid)
        if fields is None:
            return None
        # utime, stime, cutime, cstime are fields 14-17 of stat (11-14 here).
        ticks = sum(int(v) for v in fields[11:15])
        now = time.monotonic()
        if now - self._children_at > 2.0:
            self._children, self._children_at = _children_of(self.proc.pid), now
        for child in self._children:
            child_fields = _stat_fields(child)
            if child_fields:
                ticks += int(child_fields[11]) + int(child_fields[12])
        return ticks / _CLOCK_TICKS

    def peak_rss_bytes(self) -> int | None:
        """VmHWM of the worker process (its peak resident set)."""
        if self.proc is None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None


# --- the private stack -------------------------------------------------------------

@contextlib.contextmanager
def private_stack(base: Settings, label: str = "bench") -> Iterator[tuple[Settings, Path]]:
    """A fresh Kafka + Redis in a temporary directory: (settings pointing at it, the dir)."""
    from cxt.localstack import LocalStack

    with tempfile.TemporaryDirectory(prefix=f"cxt-{label}-") as tmp:
        stack = LocalStack(base, Path(tmp))
        try:
            yield stack.start(), Path(tmp)
        finally:
            stack.stop()


async def ensure_topics(settings: Settings) -> None:
    from kernel.topics import ensure_topics as create  # the pipeline's own topic set-up

    await create(settings)


# --- where it ran ------------------------------------------------------------------

def _proc_value(path: str, key: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git() -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": run("rev-parse", "HEAD"),
            "dirty": None if status is None else bool(status)}


def machine_info(settings: Settings) -> dict[str, Any]:
    mem_kb = _proc_value("/proc/meminfo", "MemTotal")
    uname = platform.uname()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _proc_value("/proc/cpuinfo", "model name"),
        "mem_total_bytes": int(mem_kb.split()[0]) * 1024 if mem_kb else None,
        "kernel": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "python": platform.python_version(),
        "kafka_version": settings.kafka_version,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {name: _version(name) for name in
                     ("aiokafka", "faust-streaming", "redis", "hiredis", "orjson", "uvloop",
                      "quixstreams", "confluent-kafka")},
        "git": _git(),
    }
