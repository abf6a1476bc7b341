"""The same pipeline, several implementations, one seeded workload, side by side.

    .venv/bin/python bench/compare.py                          # ours, ceiling, quix, kstreams
    .venv/bin/python bench/compare.py --impl ours --curve      # + the scaling curve
    .venv/bin/python bench/compare.py --no-compare --replay 1000000
    .venv/bin/python bench/compare.py --smoke --use-running    # tiny, against $KAFKA_...

Implementations (--impl, comma-separated; NAME=COMMAND adds another):
  ours     python -m cxt worker          (faust-streaming)
  ceiling  python bench/impl_ceiling.py  (aiokafka + redis-py by hand)
  quix     python bench/impl_quix.py     (Quix Streams)
  kstreams java -jar bench/kstreams/target/cxt-kstreams.jar  (Kafka Streams, Java 17)
One whose script or Python module is missing is reported as skipped, and so is
kstreams where java >= 17 or mvn is missing or its build fails.  kstreams is built
with Maven on first use and again whenever bench/kstreams/pom.xml or a source file
is newer than the jar (its log: bench/kstreams/target/build.log).

Each implementation gets a fresh private Kafka + Redis (cxt.localstack), the
topics, and the identity index of --customers customers written straight into
Redis; then its worker is started as a child process and measured in phases:

 1 throughput  --events events are preloaded into the five inbound topics
               BEFORE the worker starts (so the bench does not compete for CPU),
               then counted back on the timeline + dead-letter topics.
               events/s = events / (last output's record timestamp - first's);
               CPU s per 10k events = worker CPU (utime+stime of it and its
               children, /proc) between those two moments / events * 10,000;
               Redis bytes per entry = INFO used_memory growth over the phase /
               timeline entries stored.
 2 latency     with the warm worker, --paced-rate events/s for --paced-seconds:
               latency = timeline record timestamp - bench_sent_ns (set in the
               payload at send), p50/p99; alert latency = alert record timestamp
               - the survey's send time, p99; every bottom-2-box survey must
               raise exactly one "raised" alert (missing/duplicates counted).
 3 memory      peak RSS of the worker (VmHWM) at the end.
Then SIGTERM (exit code and time to exit are recorded) and the stack is stopped.

--curve       offered rates (--rates, each --curve-seconds): achieved throughput
              (outputs timestamped within the send window / window), latency
              p50/p99, alert p99, kept up (>= 95% of the events came back within
              the send window moved by the median latency: a steady delay is
              not falling behind, a growing backlog is).
              A rate that is not kept up ends the curve.  With the comparison
              it runs on the same worker after the latency run; alone (with
              --no-compare), after a warm-up that is not measured.
--replay N    N events preloaded into a fresh stack, then a worker with a fresh
              consumer group (CXT_APP_ID) reads them all: events/s from the
              first to the last output, CPU, time from the worker's start.
--curve and --replay run ours only unless --impl is given.

--use-running uses the Kafka + Redis of the environment (KAFKA_BOOTSTRAP_SERVERS,
REDIS_URL, CXT_TOPIC_*, CXT_APP_ID, CXT_REDIS_PREFIX) instead of private ones;
the workers are still started here, one after another on the same topics and
consumer group.  Nothing is flushed, so the Redis figure is only indicative,
and --replay's fresh consumer group reads everything already in the topics.

Prints a table (ratios to ours) and writes JSON (--out, default
bench/results/compare-<UTC time>.json).  Exit status 1 if a worker died,
stalled or lost events; skipped implementations are not failures.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import fcntl
import importlib.util
import logging
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis
import uvloop
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from harness import (
    EVENT_ID_PREFIX,
    REPO,
    Watcher,
    Worker,
    dead_letter_original,
    ensure_topics,
    iter_events,
    machine_info,
    new_run_tag,
    private_stack,
    run_tag_of,
    worker_env,
)
from impl_ceiling import WRITE as CEILING_WRITE
from latency import latency_summary

from cxt.localstack.errors import PrerequisiteError
from cxt.localstack.kafka import ensure_java
from cxt.produce import customer_key
from cxt.traffic import TrafficGenerator, make_customers
from domain.surveys import is_bottom_2_box
from kernel.kafka import make_producer
from kernel.settings import Settings, SettingsError
from kernel.status import StatusLine
from schemas.validate import customer_identity_keys, survey_scale
from store.keys import PROVISIONAL_MARK, Keys

# --- the workload ----------------------------------------------------------------------

CHANNEL_MIX = {"call": 0.35, "chat": 0.27, "email": 0.20, "survey": 0.05, "social": 0.13}
PHONE_ONLY_SHARE = 0.5  # half the events name the customer_id, half a phone/email/handle

# Seed offsets of the event streams, so every implementation gets the same events.
STREAM_THROUGHPUT, STREAM_PACED, STREAM_WARMUP, STREAM_REPLAY, STREAM_CURVE = 0, 1, 2, 3, 10

# bench_sent_ns is put into the encoded event at send time, over this placeholder
# (as wide as time.time_ns() until the year 2286; above any random 60-bit post id).
SENT_PLACEHOLDER = 9_876_543_210_987_654_321
SENT_PLACEHOLDER_BYTES = str(SENT_PLACEHOLDER).encode()
# Events are encoded with this run tag; the Sender puts the real one in (harness.iter_events).
TEMPLATE_RUN = "TTTTTTTT"
TEMPLATE_PREFIX = f"{EVENT_ID_PREFIX}{TEMPLATE_RUN}-"
TEMPLATE_PREFIX_BYTES = TEMPLATE_PREFIX.encode()

PROGRESS_EVERY = 2.0
TICK_SECONDS = 0.05
CPU_SAMPLE_SECONDS = 0.05
ALERT_GRACE = 15.0  # after the last timeline entry, how long missing alerts are awaited
# A paced run kept up if, in its send window moved by the median latency, this share of
# its events came back (a steady delay is not falling behind; a growing one is).
KEPT_UP_SHARE = 0.95
ALERT_LINGER = 0.5  # before the alert check: late duplicates still count
SEED_CHUNK = 1_000
WARMUP_EVENTS = 20_000  # before a curve without the comparison

SMOKE = {"customers": 2_000, "events": 2_000, "paced_rate": 500.0, "paced_seconds": 2.0,
         "rates": [200, 500], "curve_seconds": 3.0}
DEFAULTS = {"customers": 100_000, "events": 200_000, "paced_rate": 5_000.0,
            "paced_seconds": 20.0, "rates": [1_000, 5_000, 10_000, 20_000],
            "curve_seconds": 20.0}


@dataclass(frozen=True)
class Impl:
    name: str
    command: tuple[str, ...]
    requires: tuple[str, ...] = ()  # Python modules the command needs
    # Makes the command runnable (a build); returns why it cannot run, or None.
    prepare: Callable[[], str | None] | None = None
    # Variables the worker gets on top of worker_env(settings).
    env: Callable[[Settings], dict[str, str]] | None = None

    def unavailable(self) -> str | None:
        """Why this implementation cannot run here, or None (after `prepare`)."""
        for arg in self.command[1:]:
            if arg.endswith(".py") and not Path(arg).exists():
                return f"{_show_path(arg)} does not exist"
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            return f"Python module {', '.join(missing)} is not installed in {sys.executable}"
        return self.prepare() if self.prepare is not None else None

    def worker_env(self, settings: Settings) -> dict[str, str]:
        env = worker_env(settings)
        return env | self.env(settings) if self.env is not None else env


def _show_path(path: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(REPO))
    return path


# --- the Kafka Streams peer (bench/kstreams, Java) ---------------------------------------

KSTREAMS_DIR = REPO / "bench" / "kstreams"
KSTREAMS_JAR = "target/cxt-kstreams.jar"
# A competent user's explicit heap on this 2-core, shared machine (the JVM's default
# maximum is a quarter of the memory).
KSTREAMS_JVM = ("-Xms256m", "-Xmx1g")
# Stands for the id in the key templates the peer gets (bench/kstreams Keys.PLACEHOLDER).
KEY_PLACEHOLDER = "@ID@"
BUILD_LOG_LINES = 25


def _newest_source(project: Path) -> float:
    sources = [project / "pom.xml", *(p for p in (project / "src").rglob("*") if p.is_file())]
    return max(p.stat().st_mtime for p in sources if p.exists())


def jvm_build_needed(project: Path, jar: str = KSTREAMS_JAR) -> bool:
    """The jar is missing or older than the pom or a source file."""
    built = project / jar
    return not built.exists() or built.stat().st_mtime < _newest_source(project)


def build_jvm_peer(project: Path = KSTREAMS_DIR, jar: str = KSTREAMS_JAR,
                   label: str = "kstreams") -> str | None:
    """Build the Java peer with Maven when needed; why it cannot run (java, mvn, the
    build's last lines), or None."""
    try:
        ensure_java()
    except PrerequisiteError as exc:
        return str(exc)
    if not jvm_build_needed(project, jar):
        return None
    mvn = shutil.which("mvn")
    if mvn is None:
        return "mvn not found (needed once to build the Kafka Streams peer): apt-get install maven"
    target = project / "target"
    target.mkdir(exist_ok=True)
    log = target / "build.log"
    with (target / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two benches at once must not build into one dir
        if not jvm_build_needed(project, jar):
            return None  # built by the other one meanwhile
        print(f"compare: {label}: building {_show_path(str(project))} with Maven (first use or "
              f"sources changed; about a minute the first time) ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        with log.open("wb") as out:
            done = subprocess.run(
                [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(project / "pom.xml"), "package"],
                cwd=project, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                check=False)
        if done.returncode != 0 or not (project / jar).exists():
            lines = log.read_text(errors="replace").splitlines()[-BUILD_LOG_LINES:]
            return (f"the Maven build failed (exit {done.returncode}); the last lines of "
                    f"{_show_path(str(log))}:\n" + "\n".join(lines))
        print(f"compare: {label}: built in {time.monotonic() - started:.0f} s", file=sys.stderr,
              flush=True)
    return None


def kstreams_env(settings: Settings) -> dict[str, str]:
    """The Redis layout for the Java peer, from store/keys.py (its one source)."""
    keys = Keys(settings.redis_prefix)
    return {"KSTREAMS_KEY_TIMELINE": keys.timeline(KEY_PLACEHOLDER),
            "KSTREAMS_KEY_ENTRIES": keys.entries(KEY_PLACEHOLDER),
            "KSTREAMS_KEY_ALERT": keys.alert(KEY_PLACEHOLDER),
            "KSTREAMS_KEY_IDENTITY": keys.identity(KEY_PLACEHOLDER),
            "KSTREAMS_PROVISIONAL_MARK": PROVISIONAL_MARK,
            # The ceiling's own write script: the two peers run the same text.
            "KSTREAMS_WRITE_SCRIPT": CEILING_WRITE}


IMPLEMENTATIONS: dict[str, Impl] = {
    "ours": Impl("ours", (sys.executable, "-m", "cxt", "worker"), ("faust",)),
    "ceiling": Impl("ceiling", (sys.executable, str(REPO / "bench" / "impl_ceiling.py")),
                    ("aiokafka", "redis")),
    "quix": Impl("quix", (sys.executable, str(REPO / "bench" / "impl_quix.py")),
                 ("quixstreams",)),
    "kstreams": Impl("kstreams", (shutil.which("java") or "java", *KSTREAMS_JVM, "-jar",
                                  str(KSTREAMS_DIR / KSTREAMS_JAR)),
                     prepare=build_jvm_peer, env=kstreams_env),
}
DEFAULT_IMPLS = ("ours", "ceiling", "quix", "kstreams")


class WorkerFailed(Exception):
    """The worker died, stalled or lost events; the message says which."""

    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.tail = tail


class ImplUnavailable(Exception):
    """The worker could not even start here (e.g. a module it imports is missing)."""


class Workload:
    """The seeded customers and their identity index; event streams on demand."""

    def __init__(self, customers: int, seed: int) -> None:
        self.seed = seed
        self.customers = make_customers(customers, seed)
        self.identities = [(key, c["customer_id"]) for c in self.customers
                           for key in customer_identity_keys(c)]

        self._cache: dict[tuple[int, int], list[Prepared]] = {}

    def generator(self, stream: int) -> TrafficGenerator:
        return TrafficGenerator(self.customers, self.seed * 1000 + stream,
                                phone_only_share=PHONE_ONLY_SHARE, channel_weights=CHANNEL_MIX)

    def events(self, count: int, stream: int, settings: Settings, *, keep: bool = False
               ) -> Iterable[Prepared]:
        """`count` encoded events of `stream`: lazily, or (keep) generated once and kept,
        so every implementation is sent the same bytes without generating them again."""
        if not keep:
            return prepare(iter_events(count, self.generator(stream), TEMPLATE_RUN), settings)
        key = (count, stream)
        if key not in self._cache:
            self._cache[key] = list(self.events(count, stream, settings))
        return self._cache[key]


# topic, key, value, the survey's event id if it must raise an alert
Prepared = tuple[str, bytes | None, bytes, str | None]


def expects_alert(channel: str, payload: dict) -> bool:
    score = payload.get("score")
    return (channel == "survey" and isinstance(score, int)
            and is_bottom_2_box(score, survey_scale(payload)[0]))


def prepare(events: Iterable[tuple[str, dict]], settings: Settings) -> Iterator[Prepared]:
    """Encoded events; run tag (TEMPLATE_RUN) and bench_sent_ns are placeholders (Sender)."""
    for channel, envelope in events:
        payload = envelope["payload"]
        payload["bench_sent_ns"] = SENT_PLACEHOLDER
        alert = envelope["event_id"] if expects_alert(channel, payload) else None
        yield (settings.topics.for_channel(channel), customer_key(envelope),
               orjson.dumps(envelope), alert)


# --- what came back ----------------------------------------------------------------------

class Tally:
    """The outputs of one batch of bench events, by the `bench_seq` in their payloads.

    Compact: one byte per event, plus latencies only when asked for.
    """

    def __init__(self, run: str, count: int, *, keep_latency: bool) -> None:
        self.run = run
        self.prefix = f"{EVENT_ID_PREFIX}{run}-"
        self.prefix_bytes = self.prefix.encode()
        self.count = count
        self.keep_latency = keep_latency
        self.seen = bytearray(count)
        self.back = 0  # events accounted for (timeline or dead letter), once each
        self.timeline_entries = 0
        self.repeats = 0  # further outputs for an event already back
        self.dead: Counter[str] = Counter()
        self.first_ms = 0  # record timestamps of the first / last output
        self.last_ms = 0
        self.latency_ms: list[float] = []
        self.output_ms: list[int] = []  # record timestamps (only with keep_latency)
        self.missing_bench_field = 0
        self.sent = 0
        self.first_send_ns = 0
        self.last_send_ns = 0
        self.expected: dict[str, int] = {}  # survey event id -> sent ns
        self.raised: Counter[str] = Counter()
        self.alerts_seen = 0
        self.alerts_dead = 0
        self.alerts_unexpected = 0
        self.alert_latency_ms: list[float] = []
        self.alert_worker_latency_ms: list[float] = []
        self.progress = 0  # anything at all that came back

    def sending(self, sent_ns: int, alert: str | None) -> None:
        self.sent += 1
        self.first_send_ns = self.first_send_ns or sent_ns
        self.last_send_ns = sent_ns
        if alert is not None:
            self.expected[alert] = sent_ns

    @property
    def alerts_pending(self) -> int:
        return len(self.expected) - self.alerts_seen - self.alerts_dead

    @property
    def complete(self) -> bool:
        return self.back >= self.count and self.alerts_pending <= 0

    def _account(self, payload: dict, timestamp_ms: int) -> bool:
        """Mark the event back; False if it is not one of ours or was back already."""
        seq = payload.get("bench_seq")
        if not isinstance(seq, int) or not 0 <= seq < self.count:
            return False
        self.progress += 1
        if self.seen[seq]:
            self.repeats += 1
            return False
        self.seen[seq] = 1
        self.back += 1
        if not self.first_ms or timestamp_ms < self.first_ms:
            self.first_ms = timestamp_ms
        self.last_ms = max(self.last_ms, timestamp_ms)
        return True

    def timeline(self, entry: dict, timestamp_ms: int) -> None:
        payload = entry.get("payload")
        if not isinstance(payload, dict) or not self._account(payload, timestamp_ms):
            return
        self.timeline_entries += 1
        if self.keep_latency:
            sent_ns = payload.get("bench_sent_ns")
            if isinstance(sent_ns, int):
                self.latency_ms.append(timestamp_ms - sent_ns / 1e6)
            else:
                self.missing_bench_field += 1
            self.output_ms.append(timestamp_ms)

    def dead_letter(self, original: dict, reason: str, timestamp_ms: int) -> None:
        payload = original.get("payload")
        if not isinstance(payload, dict) or not self._account(payload, timestamp_ms):
            return
        self.dead[reason] += 1
        if self.keep_latency:
            self.output_ms.append(timestamp_ms)
        if str(original.get("event_id")) in self.expected:
            self.alerts_dead += 1  # no alert will come for it

    def alert(self, alert: dict, survey_id: str, timestamp_ms: int) -> None:
        self.progress += 1
        self.raised[survey_id] += 1
        if self.raised[survey_id] > 1:
            return  # a duplicate
        sent_ns = self.expected.get(survey_id)
        if sent_ns is None:
            self.alerts_unexpected += 1
            return
        self.alerts_seen += 1
        self.alert_latency_ms.append(timestamp_ms - sent_ns / 1e6)
        worker_ms = alert.get("latency_ms")
        if isinstance(worker_ms, int | float):
            self.alert_worker_latency_ms.append(float(worker_ms))

    def alert_summary(self) -> dict[str, Any]:
        duplicates = sum(n - 1 for n in self.raised.values() if n > 1)
        missing = max(0, self.alerts_pending)
        return {
            "expected": len(self.expected), "seen": self.alerts_seen, "missing": missing,
            "duplicates": duplicates, "unexpected": self.alerts_unexpected,
            "survey_dead_lettered": self.alerts_dead,
            "exactly_once": missing == 0 and duplicates == 0 and self.alerts_unexpected == 0,
        }


class Board:
    """The Watcher's sink: hands each output to the Tally of its run."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}

    def add(self, tally: Tally) -> Tally:
        self.tallies[tally.run] = tally
        return tally

    def _tally(self, event_id: object) -> Tally | None:
        run = run_tag_of(event_id) if isinstance(event_id, str) else None
        return self.tallies.get(run) if run else None

    def timeline(self, entry: dict, timestamp_ms: int, now_ns: int) -> None:
        tally = self._tally(entry.get("event_id"))
        if tally is not None:
            tally.timeline(entry, timestamp_ms)

    def alert(self, alert: dict, timestamp_ms: int, now_ns: int) -> None:
        if alert.get("event") != "raised":
            return
        survey_id = alert.get("survey_event_id")
        tally = self._tally(survey_id)
        if tally is not None:
            tally.alert(alert, str(survey_id), timestamp_ms)

    def dead_letter(self, record: dict, now_ns: int, timestamp_ms: int) -> None:
        original = dead_letter_original(record)
        tally = self._tally(original.get("event_id")) if original else None
        if tally is not None and original is not None:
            tally.dead_letter(original, str(record.get("reason")), timestamp_ms)


# --- sending -----------------------------------------------------------------------------

class Sender:
    """Sends prepared events, stamping bench_sent_ns; counts acknowledgements."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.sent = 0
        self.acked = 0
        self.failed = 0
        self.error: BaseException | None = None

    def _done(self, future: asyncio.Future) -> None:
        if future.cancelled() or future.exception() is not None:
            self.failed += 1
            self.error = self.error or (None if future.cancelled() else future.exception())
        else:
            self.acked += 1

    async def send(self, tally: Tally, item: Prepared) -> None:
        topic, key, value, alert = item
        value = value.replace(TEMPLATE_PREFIX_BYTES, tally.prefix_bytes)
        if alert is not None:
            alert = alert.replace(TEMPLATE_PREFIX, tally.prefix)
        sent_ns = time.time_ns()
        value = value.replace(SENT_PLACEHOLDER_BYTES, str(sent_ns).encode(), 1)
        tally.sending(sent_ns, alert)
        future = await self.producer.send(topic, value, key=key)
        future.add_done_callback(self._done)
        self.sent += 1

    async def flush(self) -> None:
        await self.producer.flush()
        while self.acked + self.failed < self.sent:
            await asyncio.sleep(0.01)
        if self.failed:
            raise RuntimeError(f"Kafka did not take {self.failed:,} of the bench's events: "
                               f"{self.error!r}")


class CpuSampler:
    """The worker's CPU seconds, sampled, so a window's CPU can be read afterwards."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.times: list[int] = []
        self.cpu: list[float] = []

    async def run(self) -> None:
        while True:
            cpu = self.worker.cpu_seconds()
            if cpu is not None:
                self.times.append(time.time_ns())
                self.cpu.append(cpu)
            await asyncio.sleep(CPU_SAMPLE_SECONDS)

    def at(self, when_ns: int) -> float | None:
        """CPU seconds at `when_ns`, interpolated between samples."""
        if not self.times:
            return None
        i = bisect.bisect_left(self.times, when_ns)
        if i == 0:
            return self.cpu[0]
        if i >= len(self.times):
            return self.cpu[-1]
        t0, t1, c0, c1 = self.times[i - 1], self.times[i], self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (when_ns - t0) / max(t1 - t0, 1)


# --- one implementation on one stack -------------------------------------------------------

class Session:
    """An implementation's worker on a stack: topics, identities, the watcher, the phases."""

    def __init__(self, impl: Impl, settings: Settings, workdir: Path, workload: Workload,
                 args: argparse.Namespace) -> None:
        self.impl = impl
        self.settings = settings
        self.workdir = workdir
        self.workload = workload
        self.args = args
        self.label = impl.name
        self.board = Board()
        self.watcher = Watcher(settings, self.board)
        # Preloads are about volume (bigger batches); paced sends about latency
        # (the project's own producer settings, 5 ms linger).
        self.bulk_sender = Sender(make_producer(settings, linger_ms=50))
        self.sender = Sender(make_producer(settings))
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.worker: Worker | None = None
        self.sampler: CpuSampler | None = None
        self._tasks: list[asyncio.Task] = []
        self._alert_blocks: list[tuple[dict, Tally]] = []
        self.status = StatusLine(every=PROGRESS_EVERY)

    def say(self, text: str) -> None:
        self.status.done()
        print(f"compare: {self.label}: {text}", file=sys.stderr, flush=True)

    async def open(self) -> None:
        await ensure_topics(self.settings)
        self.seed_identities()
        await self.watcher.start()
        self._tasks.append(asyncio.create_task(self.watcher.run()))
        await self.bulk_sender.producer.start()
        await self.sender.producer.start()

    def seed_identities(self) -> None:
        started = time.monotonic()
        keys = Keys(self.settings.redis_prefix)
        identities = self.workload.identities
        pipe = self.redis.pipeline(transaction=False)  # MSETs of SEED_CHUNK keys each
        for start in range(0, len(identities), SEED_CHUNK):
            pipe.mset({keys.identity(key): customer_id
                       for key, customer_id in identities[start:start + SEED_CHUNK]})
        pipe.execute()
        self.say(f"identity index: {len(self.workload.identities):,} keys of "
                 f"{len(self.workload.customers):,} customers "
                 f"in {time.monotonic() - started:.1f} s")

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def start_worker(self, app_id: str | None = None) -> None:
        settings = self.settings if app_id is None else self.settings.with_(app_id=app_id)
        cwd = Path(tempfile.mkdtemp(prefix=f"worker-{self.impl.name}-", dir=self.workdir))
        self.worker = Worker(list(self.impl.command), self.impl.worker_env(settings),
                             cwd / "worker.log", cwd=cwd)
        self.worker.start()
        self.sampler = CpuSampler(self.worker)
        self._tasks.append(asyncio.create_task(self.sampler.run()))
        self.say(f"worker started (pid {self.worker.pid}): {shlex.join(self.impl.command)}")

    def check_worker(self) -> None:
        watcher = self._tasks[0] if self._tasks else None
        if watcher is not None and watcher.done():
            watcher.result()  # the watcher failed: raise its error
            raise RuntimeError("the watcher stopped")
        worker = self.worker
        if worker is None or worker.alive():
            return
        tail = worker.tail(40)
        if not any(t.progress for t in self.board.tallies.values()):
            for line in reversed(tail.splitlines()):
                if "ModuleNotFoundError" in line or "ImportError" in line:
                    raise ImplUnavailable(line.strip())
        raise WorkerFailed(f"the worker exited with status {worker.returncode}", tail)

    async def close(self) -> dict[str, Any]:
        """Alert check (after a short linger), stop the worker, the watcher, the clients."""
        stop: dict[str, Any] = {}
        try:
            if self._alert_blocks:
                await asyncio.sleep(ALERT_LINGER)
                for block, tally in self._alert_blocks:
                    block["alerts"] = tally.alert_summary()
        finally:
            if self.worker is not None:
                stop = await asyncio.to_thread(self.worker.stop)
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task  # a failed watcher was reported by check_worker
            with contextlib.suppress(Exception):
                await self.watcher.stop()
            for sender in (self.bulk_sender, self.sender):
                with contextlib.suppress(Exception):
                    await sender.producer.stop()
            self.redis.close()
            self.status.done()
        return stop

    # -- waiting ----------------------------------------------------------------------

    async def wait(self, tally: Tally, what: str, *, deadline: float | None = None) -> bool:
        """Until `tally` is complete (True) or `deadline` (monotonic) passes (False).

        WorkerFailed when the worker dies or nothing comes back for --idle-timeout
        s (twice that before the first output, for the worker's start-up).
        Expected alerts still missing ALERT_GRACE s after the last event came back
        are left to the alert check.
        """
        idle_timeout = self.args.idle_timeout
        last_progress, last_change = -1, time.monotonic()
        while not tally.complete:
            now = time.monotonic()
            self.check_worker()
            if tally.progress != last_progress:
                last_progress, last_change = tally.progress, now
            quiet = now - last_change
            if tally.back >= tally.count and quiet > min(ALERT_GRACE, idle_timeout):
                break  # only alerts missing: reported by the alert check
            limit = idle_timeout if tally.progress else 2 * idle_timeout  # + start-up
            if quiet > limit:
                raise WorkerFailed(
                    f"stalled in {what}: {tally.count - tally.back:,} of {tally.count:,} "
                    f"events not back, nothing new for {quiet:.0f} s",
                    self.worker.tail(40) if self.worker else "")
            if deadline is not None and now > deadline:
                return False
            self.status.update(f"compare: {self.label}: {what}: {self._progress(tally)}")
            await asyncio.sleep(0.1)
        self.status.done()
        return True

    def _progress(self, tally: Tally) -> str:
        text = f"back {tally.back:,}/{tally.count:,}"
        if tally.first_ms and tally.back:
            elapsed = max(time.time() - tally.first_ms / 1000, 1e-3)
            rate = tally.back / elapsed
            eta = (tally.count - tally.back) / rate if rate else 0
            text += f"  {rate:,.0f}/s  ETA {eta:,.0f} s"
        if tally.expected:
            text += f"  alerts {tally.alerts_seen:,}/{len(tally.expected):,}"
        return text

    # -- phases ---------------------------------------------------------------------------

    async def preload(self, count: int, stream: int, *, keep: bool
                      ) -> tuple[Tally, dict[str, Any]]:
        """Send `count` events (no worker needs to run); wait for Kafka's acks."""
        tally = self.board.add(Tally(new_run_tag(), count, keep_latency=False))
        events = self.workload.events(count, stream, self.settings, keep=keep)
        started = time.monotonic()
        for n, item in enumerate(events, 1):
            await self.bulk_sender.send(tally, item)
            if n % 2000 == 0:
                elapsed = time.monotonic() - started
                self.status.update(f"compare: {self.label}: preloading {n:,}/{count:,} "
                                   f"({n / elapsed:,.0f}/s, ETA "
                                   f"{(count - n) * elapsed / n:,.0f} s)")
        await self.bulk_sender.flush()
        seconds = time.monotonic() - started
        self.say(f"preloaded {count:,} events in {seconds:.1f} s")
        return tally, {"preload_s": round(seconds, 2),
                       "preload_per_s": round(count / max(seconds, 1e-9), 1)}

    async def preloaded_run(self, count: int, stream: int, what: str, *, keep: bool = False,
                            app_id: str | None = None) -> dict[str, Any]:
        """Preload, start the worker, count everything back (throughput / replay)."""
        tally, result = await self.preload(count, stream, keep=keep)
        redis_before = self.used_memory()
        self.start_worker(app_id)
        assert self.worker is not None and self.sampler is not None
        await self.wait(tally, what)
        redis_after = self.used_memory()
        first_ns, last_ns = tally.first_ms * 1_000_000, tally.last_ms * 1_000_000
        window = max((last_ns - first_ns) / 1e9, 1e-3)
        cpu_first, cpu_last = self.sampler.at(first_ns), self.sampler.at(last_ns)
        cpu = None if cpu_first is None or cpu_last is None else cpu_last - cpu_first
        result |= {
            "events": count,
            "events_per_s": round(count / window, 1),
            "window_s": round(window, 3),
            "startup_s": round((first_ns - self.worker.started_ns) / 1e9, 2),
            "since_start_s": round((last_ns - self.worker.started_ns) / 1e9, 2),
            "cpu_s": None if cpu is None else round(cpu, 3),
            "cpu_s_per_10k": None if cpu is None else round(cpu / count * 10_000, 3),
            "cpu_cores": None if cpu is None else round(cpu / window, 2),
            "timeline_entries": tally.timeline_entries,
            "dead_lettered": dict(tally.dead),
            "repeats": tally.repeats,
            "redis_used_before": redis_before,
            "redis_used_after": redis_after,
            "redis_bytes_per_entry": (round((redis_after - redis_before)
                                            / tally.timeline_entries, 1)
                                      if tally.timeline_entries else None),
        }
        self._alert_blocks.append((result, tally))
        self.say(f"{what}: {count:,} events in {window:.2f} s = "
                 f"{result['events_per_s']:,.0f} events/s"
                 + (f", CPU {result['cpu_s_per_10k']:.2f} s per 10k events"
                    if cpu is not None else ""))
        return result

    async def paced_run(self, rate: float, seconds: float, stream: int, what: str, *,
                        keep: bool = False, drain_timeout: float | None = None
                        ) -> dict[str, Any]:
        """`rate` events/s for `seconds` to the running worker; latency figures."""
        assert self.worker is not None
        count = max(1, round(rate * seconds))
        tally = self.board.add(Tally(new_run_tag(), count, keep_latency=True))
        # Encoded before the clock starts.
        items = list(self.workload.events(count, stream, self.settings, keep=keep))
        self.say(f"{what}: {count:,} events at {rate:,.0f}/s for {seconds:g} s")
        loop = asyncio.get_running_loop()
        started, index = loop.time(), 0
        while index < count:
            due = min(count, int(rate * (loop.time() - started)) + 1)
            while index < due:
                await self.sender.send(tally, items[index])
                index += 1
            self.check_worker()
            self.status.update(f"compare: {self.label}: {what}: sent {index:,}/{count:,}  "
                               f"{self._progress(tally)}")
            await asyncio.sleep(TICK_SECONDS)
        del items
        await self.sender.flush()
        deadline = None if drain_timeout is None else time.monotonic() + drain_timeout
        drained = await self.wait(tally, what, deadline=deadline)
        first_send_ms = tally.first_send_ns / 1e6
        last_send_ms = tally.last_send_ns / 1e6
        send_window = max((tally.last_send_ns - tally.first_send_ns) / 1e9, 1e-3)
        outputs = sorted(tally.output_ms)
        in_window = (bisect.bisect_right(outputs, last_send_ms)
                     - bisect.bisect_left(outputs, first_send_ms))
        lag = count - bisect.bisect_right(outputs, last_send_ms)  # not back at the last send
        # The send window moved by the median latency: a worker that keeps pace with a
        # steady delay returns (nearly) every event in it; one that falls behind does not.
        shift = statistics.median(tally.latency_ms) if tally.latency_ms else 0.0
        in_shifted = (bisect.bisect_right(outputs, last_send_ms + shift)
                      - bisect.bisect_left(outputs, first_send_ms + shift))
        last_out = tally.last_ms or last_send_ms
        sent_per_s = count / send_window
        result = {
            "rate": rate, "seconds": seconds, "events": count,
            "sent_per_s": round(sent_per_s, 1),
            "offered_short": sent_per_s < 0.95 * rate,
            "achieved_per_s": round(in_window / send_window, 1),
            "events_per_s": round(tally.back / max((last_out - first_send_ms) / 1e3, 1e-3), 1),
            "back": tally.back,
            "drained": drained,
            "lag_at_end_s": round(lag / sent_per_s, 2),  # events not back at the last send
            "kept_up": in_shifted >= KEPT_UP_SHARE * count,
            "latency_ms": latency_summary(tally.latency_ms),
            "alert_latency_ms": latency_summary(tally.alert_latency_ms),
            "alert_worker_latency_ms": latency_summary(tally.alert_worker_latency_ms),
            "dead_lettered": dict(tally.dead),
            "repeats": tally.repeats,
            "missing_bench_field": tally.missing_bench_field,
        }
        self._alert_blocks.append((result, tally))
        lat = result["latency_ms"]
        self.say(f"{what}: p50 {lat['p50_ms']:,.0f} ms, p99 {lat['p99_ms']:,.0f} ms, "
                 f"alert p99 {result['alert_latency_ms']['p99_ms']:,.0f} ms, "
                 f"{'kept up' if result['kept_up'] else 'FELL BEHIND'}"
                 + ("" if drained else " (backlog not drained)"))
        return result

    async def curve(self, rates: Sequence[int], seconds: float) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        behind: dict[str, Any] | None = None
        for i, rate in enumerate(rates):
            if behind is not None:
                steps.append({"rate": rate, "skipped": f"fell behind at {behind['rate']:,}/s"})
                continue
            steps.append(await self.paced_run(
                rate, seconds, STREAM_CURVE + i, f"curve {rate:,}/s",
                drain_timeout=max(15.0, seconds)))
            if not (steps[-1]["kept_up"] and steps[-1]["drained"]):
                behind = steps[-1]
        return steps

    def peak_rss(self) -> int | None:
        return self.worker.peak_rss_bytes() if self.worker else None


# --- the runs ------------------------------------------------------------------------------

# Each makes its Session inside the event loop (the Kafka clients want a running loop).
SessionMaker = Callable[[], "Session"]


async def compare_one(make: SessionMaker, result: dict[str, Any],
                      args: argparse.Namespace) -> None:
    session = make()
    with_curve = session.impl.name in args.curve_impls
    try:
        await session.open()
        result["throughput"] = await session.preloaded_run(args.events, STREAM_THROUGHPUT,
                                                           "throughput", keep=True)
        result["latency"] = await session.paced_run(args.paced_rate, args.paced_seconds,
                                                    STREAM_PACED, "latency", keep=True)
        if with_curve:
            result["curve"] = await session.curve(args.rates, args.curve_seconds)
        result["peak_rss_bytes"] = session.peak_rss()
    finally:
        result["stop"] = await session.close()


async def curve_one(make: SessionMaker, result: dict[str, Any],
                    args: argparse.Namespace) -> None:
    session = make()
    try:
        await session.open()
        # Not measured: a backlog to start on, then a few seconds at the first rate, so
        # the curve starts with a worker as warm as the comparison's latency run.
        warm_up = min(args.events, WARMUP_EVENTS)
        result["warm_up"] = await session.preloaded_run(warm_up, STREAM_WARMUP, "warm-up")
        result["settle"] = await session.paced_run(args.rates[0], min(5.0, args.curve_seconds),
                                                   STREAM_WARMUP + 1, "settle")
        result["curve"] = await session.curve(args.rates, args.curve_seconds)
        result["peak_rss_bytes"] = session.peak_rss()
    finally:
        result["stop"] = await session.close()


async def replay_one(make: SessionMaker, result: dict[str, Any],
                     args: argparse.Namespace) -> None:
    session = make()
    figures: dict[str, Any] = {}
    try:
        await session.open()
        app_id = f"{session.settings.app_id}-replay-{secrets.token_hex(3)}"
        result["app_id"] = app_id
        figures = await session.preloaded_run(args.replay, STREAM_REPLAY, "replay",
                                              app_id=app_id)
        result["peak_rss_bytes"] = session.peak_rss()
    finally:
        result["stop"] = await session.close()  # also adds the alert check to `figures`
        result |= figures


@contextlib.contextmanager
def stack_for(base: Settings, args: argparse.Namespace, label: str
              ) -> Iterator[tuple[Settings, Path]]:
    if args.use_running:
        with tempfile.TemporaryDirectory(prefix=f"cxt-{label}-") as tmp:
            yield base, Path(tmp)
        return
    print(f"compare: {label}: starting a private Kafka + Redis ...", file=sys.stderr,
          flush=True)
    with private_stack(base, label) as (settings, tmp):
        yield settings, tmp


def run_section(impl: Impl, base: Settings, args: argparse.Namespace, workload: Workload,
                section: str) -> dict[str, Any]:
    result: dict[str, Any] = {"status": "ok", "command": list(impl.command)}
    reason = impl.unavailable()
    if reason is not None:
        print(f"compare: {impl.name}: SKIPPED: {reason}", file=sys.stderr, flush=True)
        return result | {"status": "skipped", "reason": reason}
    started = time.monotonic()
    try:
        with stack_for(base, args, f"{section}-{impl.name}") as (settings, workdir):
            runs = {"compare": compare_one, "curve": curve_one, "replay": replay_one}
            asyncio.run(runs[section](
                lambda: Session(impl, settings, workdir, workload, args), result, args))
    except ImplUnavailable as exc:
        print(f"compare: {impl.name}: SKIPPED: the worker could not start: {exc}",
              file=sys.stderr, flush=True)
        result |= {"status": "skipped", "reason": f"the worker could not start: {exc}"}
    except WorkerFailed as exc:
        print(f"compare: {impl.name}: FAILED: {exc}\n--- worker log (last lines) ---\n"
              f"{exc.tail or '(the worker wrote nothing)'}\n---", file=sys.stderr, flush=True)
        result |= {"status": "failed", "reason": str(exc), "log_tail": exc.tail}
    result["section_s"] = round(time.monotonic() - started, 1)
    if result["status"] == "ok":
        result |= lost_events(result)
    return result


def lost_events(result: dict[str, Any]) -> dict[str, Any]:
    """A run that finished but lost alerts is a failure too."""
    problems = []
    for name in ("throughput", "latency", "warm_up", "settle"):
        alerts = (result.get(name) or {}).get("alerts")
        if alerts and not alerts["exactly_once"]:
            problems.append(f"{name}: alerts {alerts['missing']} missing, "
                            f"{alerts['duplicates']} duplicated, "
                            f"{alerts['unexpected']} unexpected")
    alerts = result.get("alerts")
    if alerts and not alerts["exactly_once"]:
        problems.append(f"alerts {alerts['missing']} missing, {alerts['duplicates']} "
                        f"duplicated, {alerts['unexpected']} unexpected")
    if problems:
        return {"status": "failed", "reason": "; ".join(problems)}
    return {}


# --- output --------------------------------------------------------------------------------

def _get(result: dict[str, Any], *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _alerts_cell(result: dict[str, Any]) -> str | None:
    blocks = [b for b in (_get(result, "throughput", "alerts"), _get(result, "latency", "alerts"))
              if b]
    if not blocks:
        return None
    expected = sum(b["expected"] for b in blocks)
    bad = [f"{n} {what}" for what in ("missing", "duplicates", "unexpected")
           if (n := sum(b[what] for b in blocks))]
    return f"yes ({expected:,})" if not bad else "NO: " + ", ".join(bad)


def _stop_cell(result: dict[str, Any]) -> str | None:
    stop = result.get("stop")
    if not stop or stop.get("exit_code") is None:
        return None
    return (f"exit {stop['exit_code']} in {stop['seconds']:.1f} s"
            + (" (killed)" if stop.get("killed") else ""))


def table_rows(args: argparse.Namespace) -> list[tuple[str, Any, str]]:
    """(label, how to get the value, format); numbers get a ratio to ours."""
    rate = f"{args.paced_rate:,.0f}/s"
    mb = 1024 * 1024
    return [
        ("throughput, events/s (higher is better)",
         lambda r: _get(r, "throughput", "events_per_s"), "{:,.0f}"),
        ("CPU s per 10k events", lambda r: _get(r, "throughput", "cpu_s_per_10k"), "{:,.2f}"),
        (f"latency p50 ms at {rate}", lambda r: _get(r, "latency", "latency_ms", "p50_ms"),
         "{:,.0f}"),
        (f"latency p99 ms at {rate}", lambda r: _get(r, "latency", "latency_ms", "p99_ms"),
         "{:,.0f}"),
        (f"alert latency p99 ms at {rate}",
         lambda r: _get(r, "latency", "alert_latency_ms", "p99_ms"), "{:,.0f}"),
        (f"kept up with {rate}", lambda r: _yes(_get(r, "latency", "kept_up")), "text"),
        ("alerts exactly once", _alerts_cell, "text"),
        ("peak RSS MB (VmHWM)",
         lambda r: r["peak_rss_bytes"] / mb if r.get("peak_rss_bytes") else None, "{:,.0f}"),
        ("Redis bytes per entry",
         lambda r: _get(r, "throughput", "redis_bytes_per_entry"), "{:,.0f}"),
        ("worker start to first output s", lambda r: _get(r, "throughput", "startup_s"),
         "{:,.1f}"),
        ("SIGTERM", _stop_cell, "text"),
    ]


def _yes(value: Any) -> str | None:
    return None if value is None else ("yes" if value else "no")


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def comparison_table(results: dict[str, dict[str, Any]], args: argparse.Namespace
                     ) -> tuple[str, list[dict[str, Any]]]:
    names = list(results)
    base = results.get("ours") if (results.get("ours") or {}).get("status") == "ok" else None
    rows, data = [], []
    for label, get, fmt in table_rows(args):
        cells, values = [label], {}
        base_value = get(base) if base is not None else None
        for name in names:
            result = results[name]
            if result["status"] == "skipped":
                cells.append("skipped")
                values[name] = None
                continue
            value = get(result)
            values[name] = value
            if value is None:
                cells.append("FAILED" if result["status"] == "failed" else "-")
            elif fmt == "text":
                cells.append(str(value))
            else:
                text = fmt.format(value)
                if name != "ours" and isinstance(base_value, int | float) and base_value:
                    text += f" ({value / base_value:.2f}×)"  # noqa: RUF001
                cells.append(text)
        rows.append(cells)
        data.append({"metric": label, "values": values})
    return render_table(["metric", *names], rows), data


def curve_table(steps: list[dict[str, Any]]) -> str:
    rows = []
    for step in steps:
        if "skipped" in step:
            rows.append([f"{step['rate']:,}", "-", "-", "-", "-", "-", step["skipped"]])
            continue
        kept = "yes" if step["kept_up"] else "no"
        if step["offered_short"]:
            kept += " (bench could not offer the rate)"
        if not step["drained"]:
            kept += " (not drained)"
        rows.append([f"{step['rate']:,}", f"{step['sent_per_s']:,.0f}",
                     f"{step['achieved_per_s']:,.0f}", f"{step['latency_ms']['p50_ms']:,.0f}",
                     f"{step['latency_ms']['p99_ms']:,.0f}",
                     f"{step['alert_latency_ms']['p99_ms']:,.0f}", kept])
    return render_table(["offered/s", "sent/s", "achieved/s", "p50 ms", "p99 ms",
                         "alert p99 ms", "kept up"], rows)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    compare = results["implementations"]
    if compare:
        table, results["table"] = comparison_table(compare, args)
        ratios = "; ratios are to ours" if (compare.get("ours") or {}).get("status") == "ok" else ""
        print(f"\n{args.events:,} events preloaded for throughput, then "
              f"{args.paced_rate:,.0f}/s for {args.paced_seconds:g} s for latency; "
              f"{args.customers:,} customers{ratios}\n")
        print(table)
        if args.use_running:
            print("(--use-running: a shared Redis, so its figure is only indicative)")
    for name, result in [*compare.items(), *results["curve"].items()]:
        if "curve" in result:
            print(f"\nscaling curve: {name} ({args.curve_seconds:g} s per rate)\n")
            print(curve_table(result["curve"]))
    replays = [(name, r) for name, r in results["replay"].items() if r["status"] == "ok"]
    if replays:
        print(f"\nreplay: {args.replay:,} stored events read by a fresh consumer group\n")
    for name, result in replays:
        cpu = result["cpu_s_per_10k"]
        print(f"{name}: {result['events_per_s']:,.0f} events/s ({result['window_s']:,.1f} s "
              f"first to last output; {result['since_start_s']:,.1f} s from worker start"
              + (f"; CPU {cpu:.2f} s per 10k events" if cpu is not None else "")
              + f"; preloaded at {result['preload_per_s']:,.0f}/s)")
    notes = [(section, name, r) for section in ("implementations", "curve", "replay")
             for name, r in results[section].items() if r["status"] != "ok"]
    if notes:
        print()
    for section, name, result in notes:
        where = "" if section == "implementations" else f" ({section})"
        print(f"{name}{where}: {result['status'].upper()}: {result['reason']}")


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPO / "bench" / "results" / f"compare-{stamp}.json"


# --- command line --------------------------------------------------------------------------

def _impls(text: str) -> list[Impl]:
    impls: list[Impl] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, eq, command = item.partition("=")
        name = name.strip()
        if eq:
            argv = shlex.split(command)
            if not name or not argv:
                raise argparse.ArgumentTypeError(f"{item!r}: expected NAME=COMMAND")
            impls.append(Impl(name, tuple(argv)))
        elif name in IMPLEMENTATIONS:
            impls.append(IMPLEMENTATIONS[name])
        else:
            raise argparse.ArgumentTypeError(
                f"unknown implementation {name!r} (known: {', '.join(IMPLEMENTATIONS)}; "
                "or NAME=COMMAND)")
    names = [i.name for i in impls]
    if not impls:
        raise argparse.ArgumentTypeError("no implementation named")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"an implementation is named twice: {text!r}")
    return impls


def _rates(text: str) -> list[int]:
    try:
        rates = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected whole events/s separated by commas, e.g. 1000,5000") from None
    if not rates or any(r < 1 for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: rates must be at least 1")
    return sorted(set(rates))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/compare.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", type=_impls, metavar="LIST",
                        help="implementations, comma-separated (default: "
                             f"{','.join(DEFAULT_IMPLS)}; for --curve / --replay: ours)")
    parser.add_argument("--events", type=int, metavar="N",
                        help=f"events preloaded for throughput (default {DEFAULTS['events']:,})")
    parser.add_argument("--paced-rate", type=float, metavar="R",
                        help=f"events/s of the latency run (default "
                             f"{DEFAULTS['paced_rate']:,.0f})")
    parser.add_argument("--paced-seconds", type=float, metavar="S",
                        help=f"length of the latency run (default {DEFAULTS['paced_seconds']:g})")
    parser.add_argument("--customers", type=int, metavar="N",
                        help=f"customers in the identity index (default "
                             f"{DEFAULTS['customers']:,})")
    parser.add_argument("--seed", type=int, default=7, help="workload seed (default 7)")
    parser.add_argument("--curve", action="store_true", help="also measure the scaling curve")
    parser.add_argument("--rates", type=_rates, metavar="LIST",
                        help="offered events/s of the curve (default 1000,5000,10000,20000)")
    parser.add_argument("--curve-seconds", type=float, metavar="S",
                        help=f"length of each curve step (default {DEFAULTS['curve_seconds']:g})")
    parser.add_argument("--replay", type=int, metavar="N",
                        help="also time a fresh consumer group reading N stored events")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the comparison (run only --curve and/or --replay)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (2,000 customers and events, 500/s for 2 s)")
    parser.add_argument("--use-running", action="store_true",
                        help="use the Kafka + Redis of the environment, not private ones")
    parser.add_argument("--idle-timeout", type=float, default=60.0, metavar="S",
                        help="fail an implementation when nothing came back for S s "
                             "(twice that after the worker's start; default 60)")
    parser.add_argument("--out", type=Path, metavar="PATH",
                        help="JSON results (default bench/results/compare-<UTC time>.json)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else DEFAULTS
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name, minimum in (("events", 1), ("customers", 1)):
        if getattr(args, name) < minimum:
            parser.error(f"--{name} must be at least {minimum}")
    for name in ("paced_rate", "paced_seconds", "curve_seconds", "idle_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be more than 0")
    if args.replay is not None and args.replay < 1:
        parser.error("--replay must be at least 1")
    if args.no_compare and not (args.curve or args.replay):
        parser.error("--no-compare leaves nothing to run: add --curve or --replay N")
    explicit = args.impl is not None
    args.impls = args.impl or [IMPLEMENTATIONS[n] for n in DEFAULT_IMPLS]
    args.side_impls = args.impls if explicit else [IMPLEMENTATIONS["ours"]]
    args.curve_impls = {i.name for i in args.side_impls} if args.curve else set()
    return args


def parameters(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    return {
        "implementations": {i.name: list(i.command) for i in args.impls},
        "compare": not args.no_compare,
        "customers": args.customers, "seed": args.seed, "events": args.events,
        "paced_rate": args.paced_rate, "paced_seconds": args.paced_seconds,
        "curve": args.curve, "rates": args.rates, "curve_seconds": args.curve_seconds,
        "curve_implementations": sorted(args.curve_impls),
        "replay": args.replay,
        "replay_implementations": [i.name for i in args.side_impls] if args.replay else [],
        "smoke": args.smoke, "use_running": args.use_running,
        "idle_timeout": args.idle_timeout,
        "channel_mix": CHANNEL_MIX, "phone_only_share": PHONE_ONLY_SHARE,
        "partitions": base.topics.partitions, "batch_size": base.batch_size,
        "batch_window_ms": base.batch_window_ms,
        "kafka": base.kafka_bootstrap_servers if args.use_running else "private",
    }


def _quiet_retries(record: logging.LogRecord) -> bool:
    return "NotLeaderForPartition" not in record.getMessage()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Right after topic creation aiokafka logs each retried request
    # (NotLeaderForPartition) although it recovers by itself; other errors still show.
    logging.basicConfig(format="compare: %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_retries)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        base = Settings.from_env()
    except SettingsError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # cheaper per event, as the worker
    started = time.monotonic()
    results: dict[str, Any] = {
        "tool": "bench/compare.py",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(base),
        "parameters": parameters(args, base),
        "implementations": {}, "curve": {}, "replay": {},
    }
    out = args.out or default_out()
    status = 0
    try:
        print(f"compare: making {args.customers:,} customers (seed {args.seed}) ...",
              file=sys.stderr, flush=True)
        workload = Workload(args.customers, args.seed)
        if not args.no_compare:
            for impl in args.impls:
                results["implementations"][impl.name] = run_section(
                    impl, base, args, workload, "compare")
        compared = {n for n, r in results["implementations"].items() if r["status"] != "skipped"}
        if args.curve:
            for impl in args.side_impls:
                if impl.name not in compared:
                    results["curve"][impl.name] = run_section(impl, base, args, workload,
                                                              "curve")
        if args.replay:
            for impl in args.side_impls:
                results["replay"][impl.name] = run_section(impl, base, args, workload,
                                                           "replay")
    except KeyboardInterrupt:
        print("\ncompare: interrupted", file=sys.stderr)
        status = 130
    except (KafkaError, redis.RedisError, RuntimeError, OSError) as exc:
        # The stack itself (a private one that would not start, or the running one
        # at the configured addresses) is not usable: no implementation can run.
        message = str(exc) if type(exc).__name__ in str(exc) else f"{type(exc).__name__}: {exc}"
        where = (f" (Kafka {base.kafka_bootstrap_servers}, Redis {base.redis_url} from the "
                 "environment)" if args.use_running else "")
        print(f"compare: FAILED: {message}{where}", file=sys.stderr)
        status = 1
    except Exception:  # a bug here: say so, but keep what was measured
        print("compare: internal error:", file=sys.stderr)
        traceback.print_exc()
        status = 1
    results["duration_s"] = round(time.monotonic() - started, 1)
    report(results, args)
    sections = [r for s in ("implementations", "curve", "replay") for r in results[s].values()]
    if status == 0:
        if any(r["status"] == "failed" for r in sections):
            status = 1
        elif not any(r["status"] == "ok" for r in sections):
            print("compare: nothing was measured (every implementation was skipped)",
                  file=sys.stderr)
            status = 1
    results["exit_status"] = status
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nresults: {_show_path(str(out))}  (whole run {results['duration_s']:,.0f} s)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
